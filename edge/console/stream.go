package console

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// The event stream's rhythm: a comment every heartbeat keeps proxies from closing an idle
// stream; a stream lasts at most streamLifetime, so a session ended elsewhere stops being
// fed within that time (the browser reconnects, and is refused if signed out).
const (
	heartbeat      = 15 * time.Second
	streamLifetime = 5 * time.Minute
	writeTimeout   = 10 * time.Second
)

// live is the browsers' event stream (Server-Sent Events):
//
//	event: lead    data: {"id": "<new lead>"}
//	event: change  data: {"ids": ["<lead>", ...]} or {"all": true}
//
// plus "hello" when the stream opens (refresh whatever was missed while away).
func (c *Console) live(w http.ResponseWriter, r *http.Request, s Session) error {
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

	send := func(event string, data any) error {
		b, err := json.Marshal(data)
		if err != nil {
			return err
		}
		_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout)) // the server's WriteTimeout would end the stream
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b); err != nil {
			return err
		}
		return rc.Flush()
	}
	_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := fmt.Fprint(w, "retry: 1000\n\n"); err != nil {
		return nil
	}
	if err := send("hello", map[string]any{}); err != nil {
		return nil
	}
	beat := time.NewTicker(heartbeat)
	defer beat.Stop()
	end := time.NewTimer(min(streamLifetime, time.Until(s.ExpiresAt)))
	defer end.Stop()
	for {
		var err error
		select {
		case <-r.Context().Done():
			return nil
		case <-end.C:
			return nil
		case <-c.closing:
			return nil
		case <-beat.C:
			_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
			if _, err = fmt.Fprint(w, ": ping\n\n"); err == nil {
				err = rc.Flush()
			}
		case ch := <-changes:
			switch {
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
