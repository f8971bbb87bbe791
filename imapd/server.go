package imapd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/mailsuite/mailsuite/internal/netlimit"
)

// Server is one IMAP listener's server. Create it with New.
type Server struct {
	opts Options
	log  *slog.Logger

	// strict serves every connection that may not authenticate in
	// plaintext; loose (nil unless AllowInsecureAuth) serves loopback
	// connections that may. go-imap's InsecureAuth is server-wide, so the
	// per-connection rule needs two engines fed by one accept loop.
	strict, loose     *imapserver.Server
	strictLn, looseLn *chanListener
	engines           sync.WaitGroup
	unsubscribe       func()

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	sessions  map[*session]struct{}
	closing   bool
	drained   chan struct{} // closed when sessions becomes empty while closing

	goimapFetch atomic.Bool // tests: write every FETCH through go-imap (fastfetch.go)
}

// New checks opts and returns a server. It does not listen yet.
func New(opts Options) (*Server, error) {
	opts = opts.withDefaults()
	if opts.Accounts == nil || opts.Store == nil {
		return nil, errors.New("imapd: Options.Accounts and Options.Store are required")
	}
	if opts.TLSMode != TLSNone && opts.TLSConfig == nil {
		return nil, fmt.Errorf("imapd: TLS mode %v needs Options.TLSConfig", opts.TLSMode)
	}
	if opts.TLSMode < TLSNone || opts.TLSMode > TLSImplicit {
		return nil, fmt.Errorf("imapd: unknown TLS mode %d", opts.TLSMode)
	}
	if opts.TLSConfig != nil {
		opts.TLSConfig = opts.TLSConfig.Clone()
	}
	s := &Server{
		opts:      opts,
		log:       opts.Logger.With("proto", "imap"),
		listeners: make(map[net.Listener]struct{}),
		sessions:  make(map[*session]struct{}),
		drained:   make(chan struct{}),
	}
	s.strictLn = newChanListener()
	s.strict = imapserver.New(s.engineOptions(false))
	s.engines.Add(1)
	go func() { defer s.engines.Done(); s.strict.Serve(s.strictLn) }()
	if opts.AllowInsecureAuth && opts.TLSMode != TLSRequired {
		s.looseLn = newChanListener()
		s.loose = imapserver.New(s.engineOptions(true))
		s.engines.Add(1)
		go func() { defer s.engines.Done(); s.loose.Serve(s.looseLn) }()
	}
	// go-imap's Server.Close races with a Serve that has not yet
	// registered (WaitGroup Add after Wait): wait until both engines
	// are in Accept before anyone can call Close.
	<-s.strictLn.accepting
	if s.looseLn != nil {
		<-s.looseLn.accepting
	}
	s.unsubscribe = opts.Accounts.Subscribe(s.closeUsers)
	return s, nil
}

// capabilities lists what we advertise beyond what go-imap adds by itself
// (SASL-IR, LITERAL-, STARTTLS, AUTH=, LOGINDISABLED, and in IMAP4rev1 mode
// UNSELECT, ENABLE, IDLE, UTF8=ACCEPT).
func capabilities() imap.CapSet {
	return imap.CapSet{
		imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {},
		imap.CapNamespace: {}, imap.CapUIDPlus: {}, imap.CapESearch: {},
		imap.CapSearchRes: {}, imap.CapListExtended: {}, imap.CapListStatus: {},
		imap.CapMove: {}, imap.CapStatusSize: {}, imap.CapBinary: {},
		imap.CapChildren: {}, imap.CapSpecialUse: {}, imap.CapCreateSpecialUse: {},
		imap.CapLiteralPlus: {}, imap.CapAppendLimit: {},
	}
}

func (s *Server) engineOptions(insecureAuth bool) *imapserver.Options {
	o := &imapserver.Options{
		NewSession:   s.newSession,
		Caps:         capabilities(),
		Logger:       slogPrintf{s.log},
		InsecureAuth: insecureAuth,
	}
	if s.opts.TLSMode == TLSOptional || s.opts.TLSMode == TLSRequired {
		o.TLSConfig = s.opts.TLSConfig
	}
	return o
}

// Serve accepts connections on ln until Close or Shutdown, then returns nil. It applies the
// connection limits and OnConnect, wraps connections in TLS for
// TLSImplicit, and hands them to the protocol engine.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ln.Close()
		return nil // closed before it started: same as closed while serving
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()

	lim := netlimit.Wrap(ln, netlimit.Options{
		MaxConns:      max(s.opts.MaxConns, 0),
		MaxConnsPerIP: max(s.opts.MaxConnsPerIP, 0),
		Allow:         s.opts.Hooks.OnConnect,
		OnRefused: func(remote net.Addr, reason string) {
			s.log.Info("connection refused", "remote", remote.String(), "reason", reason)
		},
		Busy: netlimit.BusyReply(s.opts.TLSMode != TLSImplicit, "* BYE [UNAVAILABLE] too many connections, try again later\r\n"),
	})
	var delay time.Duration
	for {
		c, err := lim.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || s.isClosing() {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return fmt.Errorf("imapd: accept: %w", err)
		}
		delay = 0
		loopback := netlimit.IsLoopback(c.RemoteAddr())
		c = &batchConn{Conn: c}
		if s.opts.TLSMode == TLSImplicit {
			c = tls.Server(c, s.opts.TLSConfig)
		}
		if !s.engineFor(loopback).deliver(c) {
			c.Close()
			return nil
		}
	}
}

// engineFor picks the engine: plaintext auth is allowed only to loopback
// clients, and only with AllowInsecureAuth outside TLSRequired.
func (s *Server) engineFor(loopback bool) *chanListener {
	if loopback && s.looseLn != nil {
		return s.looseLn
	}
	return s.strictLn
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// stopAccepting closes the listeners and the engines' inboxes.
func (s *Server) stopAccepting() {
	s.mu.Lock()
	already := s.closing
	s.closing = true
	for ln := range s.listeners {
		ln.Close()
	}
	if len(s.sessions) == 0 && !already {
		close(s.drained)
	}
	s.mu.Unlock()
	if !already && s.unsubscribe != nil {
		s.unsubscribe()
	}
}

// Close stops at once: listeners and every connection are closed.
func (s *Server) Close() error {
	s.stopAccepting()
	s.strict.Close()
	if s.loose != nil {
		s.loose.Close()
	}
	s.engines.Wait()
	return nil
}

// Shutdown stops accepting, tells idle sessions BYE and lets busy ones
// finish their current command (each ends after it), until ctx is done;
// then it closes whatever is left.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopAccepting()
	s.mu.Lock()
	sessions := make([]*session, 0, len(s.sessions))
	for sess := range s.sessions {
		sessions = append(sessions, sess)
	}
	s.mu.Unlock()
	for _, sess := range sessions {
		sess.shutdown()
	}
	var err error
	select {
	case <-s.drained:
	case <-ctx.Done():
		err = ctx.Err()
	}
	s.Close()
	return err
}

// closeUsers ends the sessions of users removed or disabled in accounts.
func (s *Server) closeUsers(gone []string) {
	set := make(map[string]bool, len(gone))
	for _, u := range gone {
		set[strings.ToLower(u)] = true
	}
	s.mu.Lock()
	var victims []*session
	for sess := range s.sessions {
		if u := sess.userName(); u != "" && set[strings.ToLower(u)] {
			victims = append(victims, sess)
		}
	}
	s.mu.Unlock()
	for _, sess := range victims {
		s.log.Info("closing session of removed or disabled user", "session", sess.id, "user", sess.userName())
		go sess.conn.Bye("Account no longer available")
	}
}

func (s *Server) addSession(sess *session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.sessions[sess] = struct{}{}
	return true
}

func (s *Server) removeSession(sess *session) {
	s.mu.Lock()
	delete(s.sessions, sess)
	if s.closing && len(s.sessions) == 0 {
		select {
		case <-s.drained:
		default:
			close(s.drained)
		}
	}
	s.mu.Unlock()
}

// slogPrintf adapts slog to go-imap's Printf logger.
type slogPrintf struct{ l *slog.Logger }

func (p slogPrintf) Printf(format string, args ...any) {
	// go-imap logs client mistakes and dropped connections here; they are
	// not our errors (those are logged once by session.reply).
	p.l.Info("go-imap: " + fmt.Sprintf(format, args...))
}

// chanListener is a net.Listener fed by Server.Serve, so one accept loop
// can route each connection to one of two go-imap engines.
type chanListener struct {
	conns     chan net.Conn
	done      chan struct{}
	once      sync.Once
	accepting chan struct{} // closed on the engine's first Accept
	first     sync.Once
}

func newChanListener() *chanListener {
	return &chanListener{conns: make(chan net.Conn), done: make(chan struct{}), accepting: make(chan struct{})}
}

func (l *chanListener) deliver(c net.Conn) bool {
	select {
	case l.conns <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	l.first.Do(func() { close(l.accepting) })
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }
