package smtpd

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mailsuite/mailsuite/internal/netlimit"
)

// Server is one SMTP listener's server. Create it with New.
type Server struct {
	opts Options
	lib  *smtp.Server
	log  *slog.Logger

	// ctx bounds deliveries and auth delays; Close cancels it.
	ctx    context.Context
	cancel context.CancelFunc

	cancelSub func()

	mu     sync.Mutex
	conns  map[*trackedConn]struct{}
	byUser map[string]map[*session]struct{} // lower-case user -> sessions
}

// New checks opts, copies them and returns a server ready to Serve.
func New(opts Options) (*Server, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Server{
		opts:   o,
		log:    o.Logger.With("service", "smtp", "role", o.Role.String()),
		conns:  make(map[*trackedConn]struct{}),
		byUser: make(map[string]map[*session]struct{}),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())

	lib := smtp.NewServer(smtp.BackendFunc(s.newSession))
	lib.Domain = o.Hostname
	if o.Banner != "" {
		lib.Domain += " " + o.Banner
	}
	lib.MaxMessageBytes = o.MaxMessageBytes
	lib.MaxRecipients = o.MaxRecipients
	lib.MaxLineLength = o.MaxLineLength
	lib.ReadTimeout = o.ReadTimeout
	lib.WriteTimeout = o.WriteTimeout
	lib.EnableSMTPUTF8 = true
	// go-smtp's own rule is "TLS or AllowInsecureAuth"; ours (TLS, or
	// loopback when configured) is enforced by session.Auth and
	// AuthMechanisms, so the library must let every AUTH through to us.
	lib.AllowInsecureAuth = true
	if o.TLSMode == TLSOptional || o.TLSMode == TLSRequired {
		lib.TLSConfig = o.TLSConfig // offers STARTTLS
	}
	lib.ErrorLog = libLogger{s.log}
	s.lib = lib

	if o.Directory != nil {
		s.cancelSub = o.Directory.Subscribe(s.closeUsers)
	}
	return s, nil
}

// Serve accepts connections on ln until Close or Shutdown; it then returns nil.
func (s *Server) Serve(ln net.Listener) error {
	h := s.opts.Hooks
	if h.OnStart != nil {
		h.OnStart(ln.Addr())
	}
	if h.OnStop != nil {
		defer h.OnStop(ln.Addr())
	}
	nl := netlimit.Wrap(ln, netlimit.Options{
		MaxConns:      s.opts.MaxConns,
		MaxConnsPerIP: s.opts.MaxConnsPerIP,
		Allow:         h.OnConnect,
		OnRefused: func(remote net.Addr, reason string) {
			s.log.Info("connection refused", "remote", remote.String(), "reason", reason)
		},
		Busy: netlimit.BusyReply(s.opts.TLSMode != TLSImplicit, "421 4.7.0 Too many connections, try again later\r\n"),
	})
	s.log.Info("smtp listening", "addr", ln.Addr().String(), "tls", s.opts.TLSMode.String())
	return s.lib.Serve(&listener{Listener: nl, srv: s})
}

// Close closes the listeners and every connection at once.
func (s *Server) Close() error {
	s.stop()
	err := s.lib.Close()
	s.closeAll()
	if errors.Is(err, smtp.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting, closes idle connections, and lets those in the
// middle of a transaction finish it until ctx ends; then it closes the
// remaining ones and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	done := make(chan error, 1)
	go func() { done <- s.lib.Shutdown(ctx) }()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		s.closeIdle()
		select {
		case err := <-done:
			s.stop()
			if err != nil && !errors.Is(err, smtp.ErrServerClosed) {
				s.closeAll()
				return err
			}
			return nil
		case <-tick.C:
		}
	}
}

// closeIdle closes connections outside a transaction. One that starts a
// transaction at that moment loses it unanswered: nothing accepted is lost.
func (s *Server) closeIdle() {
	s.mu.Lock()
	var idle []*trackedConn
	for c := range s.conns {
		if !c.busy.Load() {
			idle = append(idle, c)
		}
	}
	s.mu.Unlock()
	for _, c := range idle {
		c.Close()
	}
}

func (s *Server) stop() {
	s.mu.Lock()
	cancelSub := s.cancelSub
	s.cancelSub = nil
	s.mu.Unlock()
	if cancelSub != nil {
		cancelSub()
	}
	s.cancel()
}

func (s *Server) closeAll() {
	s.mu.Lock()
	conns := make([]*trackedConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// closeUsers ends the sessions of users removed or disabled in the account
// list (accounts.Directory.Subscribe).
func (s *Server) closeUsers(gone []string) {
	var victims []*session
	s.mu.Lock()
	for _, u := range gone {
		for sess := range s.byUser[strings.ToLower(u)] {
			victims = append(victims, sess)
		}
	}
	s.mu.Unlock()
	// Close outside s.mu: smtp.Conn.Close calls Logout, which takes it.
	for _, sess := range victims {
		s.log.Info("closing session of removed or disabled user", "session", sess.info.ID, "user", sess.user())
		sess.conn.Close()
	}
}

func (s *Server) trackUser(sess *session, user string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := strings.ToLower(user)
	m := s.byUser[key]
	if m == nil {
		m = make(map[*session]struct{})
		s.byUser[key] = m
	}
	m[sess] = struct{}{}
}

func (s *Server) untrackUser(sess *session, user string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := strings.ToLower(user)
	if m := s.byUser[key]; m != nil {
		delete(m, sess)
		if len(m) == 0 {
			delete(s.byUser, key)
		}
	}
}

// listener tags each connection with an ID and, for TLSImplicit, wraps it
// in TLS below go-smtp, which recognises TLS by asserting *tls.Conn.
type listener struct {
	net.Listener
	srv *Server
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, id: newID(), srv: l.srv}
	l.srv.mu.Lock()
	l.srv.conns[tc] = struct{}{}
	l.srv.mu.Unlock()
	if l.srv.opts.TLSMode == TLSImplicit {
		return tls.Server(tc, l.srv.opts.TLSConfig), nil
	}
	return tc, nil
}

// trackedConn is the raw connection (below any TLS layer) with the state
// that outlives go-smtp's per-EHLO sessions.
type trackedConn struct {
	net.Conn
	id     string
	srv    *Server
	once   sync.Once
	noRead atomic.Bool
	busy   atomic.Bool // between MAIL and the end of its transaction

	// Touched by one goroutine at a time (NewSession, then Data).
	sawTLS bool // a session on this connection has seen TLS
	rdns   string
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.srv.mu.Lock()
		delete(c.srv.conns, c)
		c.srv.mu.Unlock()
		if h := c.srv.opts.Hooks.OnClose; h != nil {
			h(c.id)
		}
	})
	return err
}

// stopReading makes every later Read see EOF, so nothing more the client
// sends is read: go-smtp writes the pending reply, reads EOF and closes.
// (shutdown(SHUT_RD) would not do: Linux still delivers data that arrives
// after it.)
func (c *trackedConn) stopReading() { c.noRead.Store(true) }

func (c *trackedConn) Read(p []byte) (int, error) {
	if c.noRead.Load() {
		return 0, io.EOF
	}
	return c.Conn.Read(p)
}

// tracked finds our trackedConn under go-smtp's current connection.
func tracked(c net.Conn) *trackedConn {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	t, _ := c.(*trackedConn)
	return t
}

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// newID returns a short random ID for connections and messages.
func newID() string {
	var b [7]byte
	rand.Read(b[:])
	return idEncoding.EncodeToString(b[:])
}

// libLogger sends go-smtp's own messages (handshake failures, panics it
// recovered) to slog.
type libLogger struct{ log *slog.Logger }

func (l libLogger) Printf(format string, v ...any) { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l libLogger) Println(v ...any)               { l.log.Warn(strings.TrimSuffix(fmt.Sprintln(v...), "\n")) }
