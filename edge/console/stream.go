package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// The event stream's rhythm: every heartbeat a comment keeps proxies from closing an idle
// stream, and the stream's session is read again, so a session ended on another replica
// (signed out there, expired, or its Supabase renewal refused) stops its streams here
// within a heartbeat; signing out on this replica ends them at once.
const (
	heartbeat    = 15 * time.Second
	writeTimeout = 10 * time.Second
)

// live is the browsers' event stream (Server-Sent Events):
//
//	event: lead    data: {"id": "<new lead>"}
//	event: change  data: {"ids": ["<lead>", ...]} or {"all": true}
//
// plus "hello" when the stream opens (refresh whatever was missed while away), and the
// truth about the stream itself: "paused" {"reason": "..."} while the replica hears nothing
// from the database (Hub.Paused: the page may fall behind), "resumed" {} once it hears again.
// It lasts as long as its session: nothing is sent once the session is signed out or
// expired, and the stream ends then (the browser reconnects, and is refused).
func (c *Console) live(w http.ResponseWriter, r *http.Request, s Session) error {
	cookie, err := r.Cookie(sessionCookie)
	if err != nil {
		return ErrUnauthorized // page let the request in with it
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	defer c.streams.add(cookie.Value, cancel)()
	r = r.WithContext(ctx)

	rc := http.NewResponseController(w)
	// The server's ReadTimeout would cancel the request while the stream runs.
	_ = rc.SetReadDeadline(time.Time{})
	changes, stop := c.Hub.Subscribe()
	defer stop()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	write := func(format string, args ...any) error {
		// The socket's deadline, in real time: the server's WriteTimeout would end the stream.
		_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := fmt.Fprintf(w, format, args...); err != nil {
			return err
		}
		return rc.Flush()
	}
	send := func(event string, data any) error {
		b, err := json.Marshal(data)
		if err != nil {
			return err
		}
		return write("event: %s\ndata: %s\n\n", event, b)
	}
	if err := write("retry: 1000\n\n"); err != nil {
		return nil
	}
	if err := send("hello", map[string]any{}); err != nil {
		return nil
	}
	// What the browser was last told of the hub's pause: nothing yet, so "live".
	told := ""
	tell := func() error {
		why := c.Hub.Paused()
		if why == told {
			return nil
		}
		told = why
		if why == "" {
			return send("resumed", map[string]any{})
		}
		return send("paused", map[string]string{"reason": why})
	}
	if err := tell(); err != nil {
		return nil
	}
	beat := c.Clock.NewTicker(heartbeat)
	defer beat.Stop()
	for {
		var err error
		select {
		case <-ctx.Done():
			return nil
		case <-c.closing:
			return nil
		case <-beat.Chan():
			if s, err = c.sessionAgain(r, s); err != nil || !c.mayStream(ctx, s) {
				return nil
			}
			if err = tell(); err == nil {
				err = write(": ping\n\n")
			}
		case ch := <-changes:
			if !c.mayStream(ctx, s) {
				return nil
			}
			if err = tell(); err != nil {
				return nil
			}
			switch {
			case ch.Paused:
				// told above
			case ch.NewLead != "":
				err = send("lead", map[string]string{"id": ch.NewLead})
			case ch.All:
				err = send("change", map[string]bool{"all": true})
			default:
				err = send("change", map[string][]string{"ids": ch.IDs})
			}
		}
		if err != nil {
			return nil // the browser went away
		}
	}
}

// mayStream says whether a stream of session s, under ctx, may still send: not signed out
// on this replica (ctx ended) and not expired.
func (c *Console) mayStream(ctx context.Context, s Session) bool {
	return ctx.Err() == nil && c.Clock.Now().Before(s.ExpiresAt)
}

// sessionAgain reads the session of a stream's request again (a Supabase admin's renewed
// as a page's would be): ErrUnauthorized once it has ended. While the database does not
// answer, s stands (its expiry still holds) and the next heartbeat reads it again.
func (c *Console) sessionAgain(r *http.Request, s Session) (Session, error) {
	_, again, err := c.signedIn(r)
	switch {
	case err == nil:
		return again, nil
	case errors.Is(err, ErrUnauthorized):
		return Session{}, err
	}
	c.Logger.DebugContext(r.Context(), "console: an event stream's session could not be read again; the next heartbeat tries", "err", err)
	return s, nil
}

// streams are the open event streams by their session, so that signing out ends them.
type streams struct {
	mu   sync.Mutex
	next uint64
	open map[string]map[uint64]context.CancelFunc // by the session's token hash
}

// add counts a stream of the session of token, which cancel ends; remove uncounts it.
func (st *streams) add(token string, cancel context.CancelFunc) (remove func()) {
	key := string(tokenHash(token))
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.open == nil {
		st.open = map[string]map[uint64]context.CancelFunc{}
	}
	if st.open[key] == nil {
		st.open[key] = map[uint64]context.CancelFunc{}
	}
	id := st.next
	st.next++
	st.open[key][id] = cancel
	return func() {
		st.mu.Lock()
		defer st.mu.Unlock()
		delete(st.open[key], id)
		if len(st.open[key]) == 0 {
			delete(st.open, key)
		}
	}
}

// end ends every stream of the session of token.
func (st *streams) end(token string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, cancel := range st.open[string(tokenHash(token))] {
		cancel()
	}
}
