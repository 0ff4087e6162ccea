package testkit

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
)

// Proxy is a TCP link between a program and the database that the test can
// cut (every connection through it dies and no new one gets through) and
// heal, or silence (its connections stay open and carry nothing). It stops
// when the test ends.
type Proxy struct {
	URL  string // the database's URL through the link
	Port uint16 // the link's port on 127.0.0.1

	mu    sync.Mutex
	conns []net.Conn
	down  bool
	muted map[net.Conn]bool
}

// NewProxy opens a link to the database of databaseURL (in URL or
// keyword=value form).
func NewProxy(t testing.TB, databaseURL string) *Proxy {
	t.Helper()
	cfg, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	target := net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{Port: uint16(ln.Addr().(*net.TCPAddr).Port)}
	if p.URL, err = throughPort(databaseURL, p.Port); err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			if !p.track(c, up) {
				continue
			}
			go p.pipe(up, c)
			go p.pipe(c, up)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		p.Cut()
	})
	return p
}

// pipe copies src to dst, dropping what arrives while src is silenced,
// and closes dst when src ends.
func (p *Proxy) pipe(dst, src net.Conn) {
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.silenced(src) {
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *Proxy) silenced(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.muted[c]
}

// Silence makes every connection through the link carry nothing from now
// on, either way, without closing it: a partition, or a peer that hangs.
// New connections get through.
func (p *Proxy) Silence() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.muted == nil {
		p.muted = map[net.Conn]bool{}
	}
	for _, c := range p.conns {
		p.muted[c] = true
	}
}

// throughPort is databaseURL with its host 127.0.0.1:port.
func throughPort(databaseURL string, port uint16) (string, error) {
	if !strings.HasPrefix(databaseURL, "postgres://") && !strings.HasPrefix(databaseURL, "postgresql://") {
		return fmt.Sprintf("%s host=127.0.0.1 port=%d", databaseURL, port), nil
	}
	u, err := url.Parse(databaseURL)
	if err != nil {
		return "", err
	}
	u.Host = fmt.Sprintf("127.0.0.1:%d", port)
	return u.String(), nil
}

// track keeps a new connection's two ends, or closes them while the link is down.
func (p *Proxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		for _, c := range cs {
			c.Close()
		}
		return false
	}
	p.conns = append(p.conns, cs...)
	return true
}

// Cut closes every connection through the link and every new one, until Heal.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.muted = nil
}

// Heal lets new connections through again.
func (p *Proxy) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}
