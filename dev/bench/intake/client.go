package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// poster POSTs JSON to one loopback server over HTTP/1.1 keep-alive
// connections, one request at a time on each, writing the request itself
// and reading the answer with net/http's parser. It is the load, not what
// is measured: net/http's client hands every request to two goroutines of
// its connection and back, which on two shared cores costs the server
// under test about a quarter of the CPU the whole server spends on a lead.
// pgx, the ceiling's client, is as direct.
type poster struct {
	addr string // host:port
	idle chan *posterConn
}

type posterConn struct {
	conn net.Conn
	r    *bufio.Reader
	w    *bufio.Writer
}

func newPoster(addr string, conns int) *poster {
	return &poster{addr: addr, idle: make(chan *posterConn, conns)}
}

// post sends body to path with the given headers and returns the answer's
// status; the answer's body is read and dropped. ctx's deadline bounds
// the dial and the exchange.
func (p *poster) post(ctx context.Context, path string, header [][2]string, body []byte) (int, error) {
	c, err := p.get(ctx)
	if err != nil {
		return 0, err
	}
	if deadline, ok := ctx.Deadline(); ok {
		_ = c.conn.SetDeadline(deadline)
	} else {
		_ = c.conn.SetDeadline(time.Time{})
	}
	fmt.Fprintf(c.w, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", path, p.addr, len(body))
	for _, h := range header {
		fmt.Fprintf(c.w, "%s: %s\r\n", h[0], h[1])
	}
	c.w.WriteString("\r\n")
	c.w.Write(body)
	if err := c.w.Flush(); err != nil {
		c.conn.Close()
		return 0, fmt.Errorf("write request: %w", err)
	}
	res, err := http.ReadResponse(c.r, nil)
	if err != nil {
		c.conn.Close()
		return 0, fmt.Errorf("read answer: %w", err)
	}
	_, err = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if err != nil || res.Close {
		c.conn.Close()
	} else {
		p.put(c)
	}
	if err != nil {
		return res.StatusCode, fmt.Errorf("read answer's body: %w", err)
	}
	return res.StatusCode, nil
}

// get takes an idle connection or dials a new one.
func (p *poster) get(ctx context.Context) (*posterConn, error) {
	select {
	case c := <-p.idle:
		return c, nil
	default:
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", p.addr, err)
	}
	return &posterConn{conn: conn, r: bufio.NewReader(conn), w: bufio.NewWriter(conn)}, nil
}

// put keeps c for the next request, or closes it when enough are idle.
func (p *poster) put(c *posterConn) {
	select {
	case p.idle <- c:
	default:
		c.conn.Close()
	}
}

// close closes the idle connections.
func (p *poster) close() {
	for {
		select {
		case c := <-p.idle:
			c.conn.Close()
		default:
			return
		}
	}
}
