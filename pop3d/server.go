package pop3d

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mailsuite/mailsuite/internal/netlimit"
)

// ErrServerClosed is returned by Serve after Close or Shutdown.
var ErrServerClosed = errors.New("pop3d: server closed")

// Server is a POP3 server. One Server may serve several listeners; the
// wiring usually makes one per listener because the TLS mode differs.
type Server struct {
	opts Options

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	closing   bool // no new connections; idle sessions end
	// closingFlag mirrors closing for connections, which must not take mu
	// (Shutdown holds mu while it takes each conn's lock).
	closingFlag atomic.Bool
	wg          sync.WaitGroup

	unsubscribe func()
}

// New checks opts and returns a server. It copies opts.
func New(opts Options) (*Server, error) {
	o := opts.withDefaults()
	if o.NewSession == nil && (o.Accounts == nil || o.Store == nil) {
		return nil, errors.New("pop3d: Options need Accounts and Store (or NewSession)")
	}
	if o.TLSMode != TLSNone && o.TLSConfig == nil {
		return nil, errors.New("pop3d: TLS mode needs a TLSConfig")
	}
	if o.MaxLineLength < 16 || o.MaxBadCommands < 1 || o.MaxAuthFailures < 1 {
		return nil, fmt.Errorf("pop3d: MaxLineLength (%d), MaxBadCommands (%d) and MaxAuthFailures (%d) must be positive",
			o.MaxLineLength, o.MaxBadCommands, o.MaxAuthFailures)
	}
	if o.TLSMode < TLSNone || o.TLSMode > TLSImplicit {
		return nil, fmt.Errorf("pop3d: unknown TLS mode %d", o.TLSMode)
	}
	s := &Server{
		opts:      o,
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[*conn]struct{}),
	}
	if o.Accounts != nil {
		s.unsubscribe = o.Accounts.Subscribe(s.closeUsers)
	}
	return s, nil
}

// Serve accepts connections on ln until Close or Shutdown, and returns
// ErrServerClosed then. ln is wrapped with the connection limits and the
// OnConnect hook.
func (s *Server) Serve(ln net.Listener) error {
	lim := netlimit.Wrap(ln, netlimit.Options{
		MaxConns:      max(s.opts.MaxConns, 0),
		MaxConnsPerIP: max(s.opts.MaxConnsPerIP, 0),
		Allow:         s.opts.Hooks.OnConnect,
		OnRefused: func(remote net.Addr, reason string) {
			s.opts.Logger.Info("pop3: connection refused", "remote", remote.String(), "reason", reason)
		},
		Busy: netlimit.BusyReply(s.opts.TLSMode != TLSImplicit, "-ERR [SYS/TEMP] too many connections, try again later\r\n"),
	})
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.listeners[lim] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, lim)
		s.mu.Unlock()
	}()

	var delay time.Duration
	for {
		nc, err := lim.Accept()
		if err != nil {
			s.mu.Lock()
			closing := s.closing
			s.mu.Unlock()
			if closing || errors.Is(err, net.ErrClosed) {
				return ErrServerClosed
			}
			// Out of file descriptors and the like are temporary (the
			// deprecated net.Error.Temporary, as net/http checks it): back
			// off instead of giving up the listener.
			var te interface{ Temporary() bool }
			if errors.As(err, &te) && te.Temporary() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.opts.Logger.Warn("pop3: accept failed, retrying", "err", err, "delay", delay)
				time.Sleep(delay)
				continue
			}
			return fmt.Errorf("pop3d: accept: %w", err)
		}
		delay = 0
		c := s.newConn(nc)
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			nc.Close()
			return ErrServerClosed
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			c.serve()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

// Close stops the listeners and drops every connection at once. Dropped
// sessions delete nothing (RFC 1939 §6).
func (s *Server) Close() error {
	s.stopAccepting()
	s.mu.Lock()
	for c := range s.conns {
		c.raw.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// Shutdown stops the listeners, ends sessions that are waiting for a
// command, lets sessions in the middle of a command (a RETR, the expunge of
// a QUIT) finish, and closes whatever is left when ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopAccepting()
	s.mu.Lock()
	for c := range s.conns {
		c.interruptIdle()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.Close()
		return ctx.Err()
	}
}

func (s *Server) stopAccepting() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closing {
		s.closing = true
		s.closingFlag.Store(true)
		if s.unsubscribe != nil {
			s.unsubscribe()
		}
	}
	for ln := range s.listeners {
		ln.Close()
	}
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// closeUsers ends the sessions of users removed or disabled in the account
// list. Closing the socket drops the session, which deletes nothing.
func (s *Server) closeUsers(gone []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		u := c.loggedInUser()
		for _, g := range gone {
			if u != "" && strings.EqualFold(u, g) {
				s.opts.Logger.Info("pop3: closing session of removed user", "user", u, "session", c.id)
				c.raw.Close()
			}
		}
	}
}

func newSessionID() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
