// Package mailsuite is the one constructor shared by the mailsuite binary,
// the integration tests and embedders: it loads mail.ini into a typed
// Config, builds the account directory, the store, the relay queue and one
// server per configured listener, and starts and stops them together. It is
// the only package that wires the others to each other.
package mailsuite

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/mailsuite/mailsuite/accounts"
	"github.com/mailsuite/mailsuite/internal/authlimit"
	"github.com/mailsuite/mailsuite/mailstore"
	"github.com/mailsuite/mailsuite/relay"
)

// Options tune a Suite beyond mail.ini (for tests and embedders).
type Options struct {
	// Logger receives everything; default slog.Default().
	Logger *slog.Logger
	// ReloadInterval is how often mail.ini is checked for changes
	// (default 500ms; negative: never).
	ReloadInterval time.Duration
	// RelayRetrySchedule overrides the relay's retry delays (tests).
	RelayRetrySchedule []time.Duration
	// StoreFS injects failures into the store's writes (tests); nil: the
	// real file system.
	StoreFS mailstore.FS
}

// server is what each protocol package's Server offers.
type server interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
	Close() error
}

type listener struct {
	name string
	srv  server
	ln   net.Listener
}

// Suite is a running (or ready to run) mail server.
type Suite struct {
	cfg        *Config
	opts       Options
	log        *slog.Logger
	dir        *accounts.Directory
	store      *mailstore.Store
	queue      *relay.Queue
	limiter    *authlimit.Limiter
	tls        *tls.Config
	transcript *transcript

	mu        sync.Mutex
	listeners []*listener
	stop      context.CancelFunc
	wg        sync.WaitGroup
}

// New builds every part of the suite from cfg without opening any port.
func New(cfg *Config, opts Options) (*Suite, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.ReloadInterval == 0 {
		opts.ReloadInterval = 500 * time.Millisecond
	}
	s := &Suite{cfg: cfg, opts: opts, log: opts.Logger}
	for _, w := range cfg.Warnings() {
		s.log.Warn(w)
	}
	acfg := cfg.AccountsConfig()
	acfg.Logger = s.log
	var err error
	if s.dir, err = accounts.New(acfg); err != nil {
		return nil, fmt.Errorf("accounts: %w", err)
	}
	if s.tls, err = loadTLS(cfg, s.log); err != nil {
		return nil, err
	}
	s.store, err = mailstore.Open(mailstore.Options{
		Root:     filepath.Join(cfg.Server.DataDir, "mail"),
		Hostname: cfg.Server.Hostname,
		Quota: func(user string) int64 {
			u, _ := s.dir.Lookup(user)
			return u.Quota
		},
		Logger: s.log,
		FS:     opts.StoreFS,
	})
	if err != nil {
		return nil, fmt.Errorf("mailstore: %w", err)
	}
	s.limiter = authlimit.New(authlimit.Options{
		FreeFailures:    cfg.Limits.AuthFreeFailures,
		LockoutFailures: cfg.Limits.AuthLockoutFailures,
		Window:          cfg.Limits.AuthLockoutWindow,
	})
	if s.transcript, err = openTranscript(cfg.Log.Transcript); err != nil {
		s.store.Close()
		return nil, err
	}
	if s.queue, err = s.newRelay(); err != nil {
		s.store.Close()
		s.transcript.Close()
		return nil, fmt.Errorf("relay: %w", err)
	}
	return s, nil
}

// Directory, Store and Queue expose the shared parts (embedders, tests).
func (s *Suite) Directory() *accounts.Directory { return s.dir }
func (s *Suite) Store() *mailstore.Store        { return s.store }
func (s *Suite) Queue() *relay.Queue            { return s.queue }
func (s *Suite) Config() *Config                { return s.cfg }

// Start opens every configured listener and starts serving, the relay and
// the config watcher. If any listener cannot be opened, none stays open.
func (s *Suite) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var built []*listener
	for _, l := range s.cfg.listeners() {
		if l.L.Listen == "" {
			continue
		}
		srv, err := s.newServer(l.Name, *l.L)
		if err != nil {
			closeAll(built)
			return fmt.Errorf("[%s]: %w", l.Name, err)
		}
		ln, err := net.Listen("tcp", l.L.Listen)
		if err != nil {
			srv.Close()
			closeAll(built)
			return fmt.Errorf("[%s] listen %s: %w", l.Name, l.L.Listen, err)
		}
		built = append(built, &listener{name: l.Name, srv: srv, ln: ln})
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	s.listeners = built
	for _, l := range built {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			// After Shutdown began, whatever Serve returns is the close.
			if err := l.srv.Serve(l.ln); err != nil && ctx.Err() == nil {
				s.log.Error("listener stopped", "listener", l.name, "err", err)
			}
		}()
		s.log.Info("listening", "listener", l.name, "addr", l.ln.Addr().String(), "tls", string(s.listenerConfig(l.name).TLS))
	}
	if err := s.queue.Start(); err != nil {
		cancel()
		closeAll(built)
		return fmt.Errorf("relay: %w", err)
	}
	if s.opts.ReloadInterval > 0 {
		w := &configWatcher{path: s.cfg.Path, interval: s.opts.ReloadInterval, dir: s.dir, log: s.log, current: s.cfg}
		w.last, _ = os.ReadFile(s.cfg.Path) // the file New was built from
		s.wg.Add(1)
		go func() { defer s.wg.Done(); w.run(ctx) }()
	}
	return nil
}

// Addr returns the bound address of a listener ("smtp", "imaps", ...), for
// configs that listen on port 0.
func (s *Suite) Addr(name string) net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.listeners {
		if l.name == name {
			return l.ln.Addr()
		}
	}
	return nil
}

// Shutdown stops accepting connections, lets transfers in progress finish
// until ctx ends, then closes everything. Nothing acknowledged is lost:
// each server answers 250/+OK/OK only after the store or queue is durable.
func (s *Suite) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	ls := s.listeners
	s.listeners = nil
	if s.stop != nil {
		s.stop()
	}
	s.mu.Unlock()
	var errs []error
	var wg sync.WaitGroup
	var emu sync.Mutex
	for _, l := range ls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.srv.Shutdown(ctx); err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, context.DeadlineExceeded) {
				emu.Lock()
				errs = append(errs, fmt.Errorf("[%s]: %w", l.name, err))
				emu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := s.queue.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		errs = append(errs, fmt.Errorf("relay: %w", err))
	}
	s.wg.Wait()
	if err := s.store.Close(); err != nil {
		errs = append(errs, fmt.Errorf("mailstore: %w", err))
	}
	s.transcript.Close()
	return errors.Join(errs...)
}

func closeAll(ls []*listener) {
	for _, l := range ls {
		l.ln.Close()
		l.srv.Close()
	}
}

func (s *Suite) listenerConfig(name string) Listener {
	for _, l := range s.cfg.listeners() {
		if l.Name == name {
			return *l.L
		}
	}
	return Listener{}
}
