package pop3d

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/mailsuite/mailsuite/mailstore"
)

// failingStat is the real maildrop session with an error injected into
// Stat, to check how unknown errors reach the client and the log.
type failingStat struct {
	*maildrop
	err error
}

func (f failingStat) Stat() (int, int64, error) { return 0, 0, f.err }

// TestInternalErrors: an unknown error becomes "-ERR [SYS/TEMP] internal
// error (id X)", permission problems [SYS/PERM]; the cause is logged once
// with the same ID and reported to OnError; nothing internal reaches the
// client.
func TestInternalErrors(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code string
	}{
		{fmt.Errorf("reading index: %w", errors.New("disk on fire")), "SYS/TEMP"},
		{fmt.Errorf("open: %w", fs.ErrPermission), "SYS/PERM"},
	} {
		t.Run(tc.code, func(t *testing.T) {
			var logBuf syncBuffer
			var hookErrs []error
			var mu sync.Mutex
			env := withMessages(t, func(o *Options) {
				o.Logger = slog.New(slog.NewTextHandler(&logBuf, nil))
				o.Hooks.OnError = func(id string, err error) { mu.Lock(); hookErrs = append(hookErrs, err); mu.Unlock() }
				inner := *o
				o.NewSession = func(c ConnInfo) (Session, error) {
					return failingStat{newMaildropSession(inner.withDefaults(), c), tc.err}, nil
				}
			})
			c := env.login2(alice, alicePass)
			l := c.expect("-ERR [" + tc.code + "] internal error (id ")
			if strings.Contains(l, "fire") || strings.Contains(l, "permission") {
				t.Fatalf("internal detail leaked: %q", l)
			}
			id := regexp.MustCompile(`id ([0-9a-f]+-\d+)\)`).FindStringSubmatch(l)[1]
			c.run(`
C: STAT
S: -ERR [` + tc.code + `] internal error (id `)
			logs := logBuf.String()
			if n := strings.Count(logs, "id="+id+" "); n != 1 {
				t.Fatalf("error %s logged %d times:\n%s", id, n, logs)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(hookErrs) != 2 || !errors.Is(hookErrs[0], tc.err) {
				t.Fatalf("OnError got %v", hookErrs)
			}
		})
	}
}

// panickyStat is the real maildrop session with a panic injected.
type panickyStat struct{ *maildrop }

func (panickyStat) Stat() (int, int64, error) { panic("injected") }

// TestPanicEndsOnlyThatConnection: a panic in a session is recovered at the
// connection boundary, reported, and the server keeps serving.
func TestPanicEndsOnlyThatConnection(t *testing.T) {
	var mu sync.Mutex
	var errs []error
	env := withMessages(t, func(o *Options) {
		o.Hooks.OnError = func(id string, err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() }
		inner := *o
		o.NewSession = func(c ConnInfo) (Session, error) {
			return panickyStat{newMaildropSession(inner.withDefaults(), c)}, nil
		}
	})
	c := env.dial()
	c.expect("+OK")
	c.stls(env.clientTLS)
	c.send("USER " + alice)
	c.expect("+OK")
	c.send("PASS " + alicePass)
	c.expectClosed()
	mu.Lock()
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "panic: injected") {
		t.Errorf("OnError got %v", errs)
	}
	mu.Unlock()
	// The maildrop lock was released and the server still answers.
	c = env.dial()
	c.run(`
S: +OK
C: CAPA
S: +OK
S: ...
`)
	u, _ := env.store.User(alice)
	release, err := u.LockMaildrop()
	if err != nil {
		t.Fatalf("maildrop still locked after the panic: %v", err)
	}
	release()
}

// login2 logs in up to the reply to PASS, which it leaves unread.
func (env *testEnv) login2(user, pass string) *client {
	c := env.dial()
	c.expect("+OK")
	c.stls(env.clientTLS)
	c.send("USER "+user, "PASS "+pass)
	c.expect("+OK")
	return c
}

// TestExpungedElsewhere: a message an IMAP client expunges during the POP3
// session is gone for RETR ("-ERR no such message"), and QUIT still
// succeeds for the rest.
func TestExpungedElsewhere(t *testing.T) {
	env := withMessages(t)
	c := env.login(alice, alicePass)
	f, msgs := env.inbox(alice)
	if _, err := f.Expunge([]mailstore.UID{msgs[1].UID}); err != nil {
		t.Fatal(err)
	}
	c.run(`
C: RETR 2
S: -ERR no such message
C: DELE 1
C: DELE 2
C: QUIT
S: +OK
S: +OK
S: +OK pop.example.org POP3 server signing off (2 messages deleted)
`)
	if _, left := env.inbox(alice); len(left) != 1 || left[0].UID != msgs[2].UID {
		t.Fatalf("left: %+v", left)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestNewRejectsBadOptions: New refuses options it cannot serve with.
func TestNewRejectsBadOptions(t *testing.T) {
	env := startServer(t)
	base := Options{Accounts: env.dir, Store: env.store}
	for name, mod := range map[string]func(*Options){
		"no store":         func(o *Options) { o.Store = nil },
		"TLS without cert": func(o *Options) { o.TLSMode = TLSImplicit },
		"unknown TLS mode": func(o *Options) { o.TLSMode = 7; o.TLSConfig = env.serverTLS },
		"negative line":    func(o *Options) { o.MaxLineLength = -1 },
		"negative bad":     func(o *Options) { o.MaxBadCommands = -3 },
	} {
		o := base
		mod(&o)
		if _, err := New(o); err == nil {
			t.Errorf("%s: New accepted %+v", name, o)
		}
	}
	if _, err := New(base); err != nil {
		t.Fatalf("valid options: %v", err)
	}
}
