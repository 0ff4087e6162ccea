package notifierstest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// SMTPOptions says what an SMTP peer offers.
type SMTPOptions struct {
	STARTTLS    bool   // offer STARTTLS, with a self-signed certificate (see ClientTLS)
	ImplicitTLS bool   // speak TLS from the first byte, as on port 465
	User, Pass  string // require AUTH PLAIN with these before MAIL FROM
	// InsecureAuth offers AUTH without TLS (clients allow it on loopback).
	InsecureAuth bool
}

// SMTP is a real SMTP server (emersion/go-smtp). It refuses MAIL FROM with
// the answers set by Refuse and Down (a request is one MAIL FROM), RCPT TO
// of an address set by RefuseRecipient, a wrong password with 535, and a
// message with a line over RFC 5322's 998 characters with 554; anything
// else it delivers.
type SMTP struct {
	*peer[Delivery]
	Host       string // 127.0.0.1
	Port       int
	User, Pass string // what AUTH wants, if anything

	rootCAs    *x509.CertPool      // trusts the certificate, if TLS is offered
	recipients map[string]Answer   // under peer.mu
	sessions   map[*smtp.Conn]bool // every connection, under peer.mu
}

// Delivery is one message an SMTP peer accepted; its Messages and WaitFor
// return them.
type Delivery struct {
	From     string   // the envelope's MAIL FROM
	To       []string // the envelope's RCPT TOs
	Data     []byte   // the message as sent: headers and body
	TLS      bool     // sent over TLS (STARTTLS or implicit)
	AuthUser string   // who authenticated, if anyone
	Received time.Time
}

// NewSMTP starts an SMTP peer, stopped when the test ends.
func NewSMTP(t testing.TB, opts SMTPOptions) *SMTP {
	t.Helper()
	s := &SMTP{User: opts.User, Pass: opts.Pass, recipients: map[string]Answer{}, sessions: map[*smtp.Conn]bool{}}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		s.mu.Lock()
		s.sessions[c] = true
		s.mu.Unlock()
		return &smtpSession{peer: s, conn: c}, nil
	}))
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = opts.InsecureAuth
	srv.ErrorLog = log.New(io.Discard, "", 0)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if opts.STARTTLS || opts.ImplicitTLS {
		cert, err := selfSigned()
		if err != nil {
			t.Fatal(err)
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert.cert}}
		s.rootCAs = cert.pool
	}
	if opts.ImplicitTLS {
		l = tls.NewListener(l, srv.TLSConfig)
		srv.TLSConfig = nil // no STARTTLS inside TLS
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	s.peer = newPeer[Delivery](t) // its cleanup runs first, freeing hanging sessions
	addr := l.Addr().(*net.TCPAddr)
	s.Host, s.Port = addr.IP.String(), addr.Port
	return s
}

// RefuseRecipient makes every RCPT TO:<addr> get a: a mailbox that does not
// exist (550) or cannot take mail now (451).
func (s *SMTP) RefuseRecipient(addr string, a Answer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recipients[addr] = a
}

// Sessions is how many SMTP sessions (connections) clients opened.
func (s *SMTP) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// DropSessions closes every open session from the server's side, as a server
// does with clients idle too long.
func (s *SMTP) DropSessions() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.sessions {
		c.Close()
	}
}

// ClientTLS is a TLS configuration that trusts the peer's certificate, which
// is for 127.0.0.1 and localhost.
func (s *SMTP) ClientTLS() *tls.Config {
	return &tls.Config{RootCAs: s.rootCAs}
}

type smtpSession struct {
	peer     *SMTP
	conn     *smtp.Conn
	authUser string
	from     string
	to       []string
}

func (s *smtpSession) AuthMechanisms() []string {
	if s.peer.User == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *smtpSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != s.peer.User || pass != s.peer.Pass {
			return smtp.ErrAuthFailed
		}
		s.authUser = user
		return nil
	}), nil
}

func (s *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	s.peer.arrived()
	if s.peer.User != "" && s.authUser == "" {
		return smtp.ErrAuthRequired
	}
	if a := s.peer.next(); a != nil {
		if a.Hang {
			<-s.peer.done
			return smtp.ErrServerClosed
		}
		return reply(*a)
	}
	s.from = from
	return nil
}

func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.peer.mu.Lock()
	a, refused := s.peer.recipients[to]
	s.peer.mu.Unlock()
	if refused {
		return reply(a)
	}
	s.to = append(s.to, to)
	return nil
}

func (s *smtpSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	// RFC 5322 2.1.1: a line is at most 998 characters; servers refuse
	// longer ones (or break them, corrupting a header).
	for i, line := range bytes.Split(data, []byte("\n")) {
		if len(bytes.TrimSuffix(line, []byte("\r"))) > 998 {
			return reply(Answer{Status: 554, Body: fmt.Sprintf("line %d is longer than 998 characters (RFC 5322 2.1.1)", i+1)})
		}
	}
	_, isTLS := s.conn.TLSConnectionState()
	s.peer.accept(Delivery{From: s.from, To: s.to, Data: data, TLS: isTLS, AuthUser: s.authUser, Received: time.Now()})
	return nil
}

func (s *smtpSession) Reset()        { s.from, s.to = "", nil }
func (s *smtpSession) Logout() error { return nil }

// reply is a as an SMTP reply; go-smtp adds the enhanced code for its class.
func reply(a Answer) error {
	return &smtp.SMTPError{Code: a.Status, EnhancedCode: smtp.EnhancedCodeNotSet, Message: a.Body}
}

type testCert struct {
	cert tls.Certificate
	pool *x509.CertPool // trusts cert
}

// selfSigned is a certificate for 127.0.0.1 and localhost, made once.
var selfSigned = sync.OnceValues(func() (testCert, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return testCert{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "leadrelay test SMTP"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return testCert{}, err
	}
	parsed, err := x509.ParseCertificate(der)
	if err != nil {
		return testCert{}, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(parsed)
	return testCert{cert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool: pool}, nil
})
