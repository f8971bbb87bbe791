package smtpd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// events records hook calls in order.
type events struct {
	mu  sync.Mutex
	log []string
}

func (e *events) add(format string, args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.log = append(e.log, fmt.Sprintf(format, args...))
}

func (e *events) all() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.log...)
}

// waitFor polls until the log holds an entry matching re (hooks on close
// run after the client has seen the end).
func (e *events) waitFor(t *testing.T, re string) {
	t.Helper()
	rx := regexp.MustCompile(re)
	for range 200 {
		for _, l := range e.all() {
			if rx.MatchString(l) {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no event /%s/ in %q", re, e.all())
}

// standalone returns Options for a receiver without accounts or store whose
// hooks all record into ev.
func standalone(ev *events, edit func(*Hooks)) Options {
	h := Hooks{
		OnStart:   func(a net.Addr) { ev.add("start") },
		OnStop:    func(a net.Addr) { ev.add("stop") },
		OnConnect: func(r net.Addr) bool { ev.add("connect"); return true },
		OnMailFrom: func(s *SessionInfo, from string) error {
			ev.add("mailfrom %s", from)
			return nil
		},
		OnRcptTo: func(s *SessionInfo, from, to string) error {
			if strings.HasPrefix(to, "blocked@") {
				return ErrRejected
			}
			return nil
		},
		OnMessage: func(m *Message) error {
			hdr, err := m.Header()
			if err != nil {
				return err
			}
			subj, _ := hdr.Subject()
			ev.add("message from=%s to=%v subject=%s", m.From, m.To, subj)
			return nil
		},
		OnCommand: func(id, line string) { ev.add("C: %s", line) },
		OnReply:   func(id, line string) { ev.add("S: %s", line) },
		OnClose:   func(id string) { ev.add("close") },
		OnError:   func(id string, err error) { ev.add("error %v", err) },
	}
	if edit != nil {
		edit(&h)
	}
	return Options{Hostname: "recv.test", Logger: slog.New(slog.DiscardHandler), Hooks: h}
}

func TestHookTranscript(t *testing.T) {
	ev := &events{}
	_, addr := serve(t, standalone(ev, nil))
	transcript(t, addr, false,
		s("EHLO client.test", `^250-`),
		s("MAIL FROM:<a@b.test> SIZE=100", `^250 `),
		s("RCPT TO:<x@recv.test>", `^250 `),
		s("RCPT TO:<blocked@recv.test>", `^550 5\.7\.1 Rejected`),
		s("DATA", `^354 `),
		s(msg("a@b.test", "x@recv.test", "Hello", "hi"), `^250 2\.0\.0 OK: queued as`),
		s("RSET", `^250 `),
		s("QUIT", `^221 `),
	)
	ev.waitFor(t, "^close$")
	got := regexp.MustCompile(`queued as \w+`).ReplaceAllString(strings.Join(ev.all(), "\n"), "queued as ID")
	want := `start
connect
C: EHLO client.test
S: 250 Hello client.test
C: MAIL FROM:<a@b.test> SIZE=100
mailfrom a@b.test
S: 250 2.0.0 Roger, accepting mail from <a@b.test>
C: RCPT TO:<x@recv.test>
S: 250 2.0.0 I'll make sure <x@recv.test> gets this
C: RCPT TO:<blocked@recv.test>
S: 550 5.7.1 Rejected
C: DATA
message from=a@b.test to=[x@recv.test] subject=Hello
S: 250 2.0.0 OK: queued as ID
C: RSET
S: 250 2.0.0 Session reset
close`
	if got != want {
		t.Errorf("hook log:\n%s\nwant:\n%s", got, want)
	}
}

func TestHookRejections(t *testing.T) {
	ev := &events{}
	_, addr := serve(t, standalone(ev, func(h *Hooks) {
		h.OnMailFrom = func(_ *SessionInfo, from string) error {
			if from == "spammer@bad.test" {
				return &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Go away"}
			}
			return nil
		}
		h.OnMessage = func(m *Message) error {
			if strings.Contains(string(m.Raw), "virus") {
				return fmt.Errorf("scanner: %w", ErrRejected)
			}
			return errors.New("disk on fire")
		}
	}))
	c := transcript(t, addr, false,
		s("EHLO client.test", `^250-`),
		s("MAIL FROM:<spammer@bad.test>", `^553 5\.7\.1 Go away$`),
		s("MAIL FROM:<a@b.test>", `^250 `),
		s("RCPT TO:<x@recv.test>", `^250 `),
		s("DATA", `^354 `),
		s(msg("a@b.test", "x@recv.test", "virus", "x"), `^550 5\.7\.1 Rejected$`),
		s("MAIL FROM:<a@b.test>", `^250 `),
		s("RCPT TO:<x@recv.test>", `^250 `),
		s("DATA", `^354 `),
		s(msg("a@b.test", "x@recv.test", "ok", "x"), `^451 4\.3\.0 Temporary failure, please try again later \(id \w+\)$`),
	)
	if strings.Contains(c.last, "fire") {
		t.Errorf("internal error text reached the client: %q", c.last)
	}
	ev.waitFor(t, "^error disk on fire$")
}

func TestOnConnectRefuses(t *testing.T) {
	ev := &events{}
	_, addr := serve(t, standalone(ev, func(h *Hooks) {
		h.OnConnect = func(r net.Addr) bool { ev.add("refuse %s", r); return false }
	}))
	c := dial(t, addr, false)
	if got, err := c.reply(); err == nil {
		t.Fatalf("refused client got a greeting: %q", got)
	}
	ev.waitFor(t, `^refuse 127\.0\.0\.1:`)
}

func TestMaxConnsPerIP(t *testing.T) {
	ev := &events{}
	opts := standalone(ev, nil)
	opts.MaxConnsPerIP = 1
	_, addr := serve(t, opts)
	first := transcript(t, addr, false)
	second := dial(t, addr, false)
	if got, err := second.reply(); err != nil || !strings.HasPrefix(got, "421 4.7.0 ") {
		t.Fatalf("second connection from one IP got %q, %v; want a 421 before the close", got, err)
	}
	if got, err := second.reply(); err == nil {
		t.Fatalf("the refused connection stayed open and said %q", got)
	}
	first.run([]step{s("QUIT", `^221 `)})
	ev.waitFor(t, "^close$")
	transcript(t, addr, false, s("NOOP", `^250 `)) // the slot is free again
}

func TestOnAuthHook(t *testing.T) {
	ev := &events{}
	env := startServer(t, func(o *Options) {
		o.Role = RoleSubmission
		o.AllowInsecureAuth = true
		o.Hooks.OnAuth = func(r net.Addr, user, mech string, ok bool) { ev.add("auth %s %s %v", user, mech, ok) }
		o.Hooks.OnCommand = func(id, line string) { ev.add("C: %s", line) }
	})
	transcript(t, env.addr, false,
		s("EHLO client.test", `^250-`),
		s("AUTH PLAIN "+plainIR("alice@example.com", "bad"), `^535 `),
		s("AUTH LOGIN", `^334 `),
		s(b64("bob@example.com"), `^334 `),
		s(b64("bobpw"), `^235 `),
	)
	got := strings.Join(ev.all(), "\n")
	want := "C: EHLO client.test\nC: AUTH PLAIN\nauth alice@example.com PLAIN false\nC: AUTH LOGIN\nauth bob@example.com LOGIN true"
	if got != want {
		t.Errorf("events:\n%s\nwant:\n%s", got, want)
	}
	if strings.Contains(got, "bad") || strings.Contains(got, b64("bobpw")) {
		t.Errorf("credentials in the transcript:\n%s", got)
	}
}

func TestShutdown(t *testing.T) {
	ev := &events{}
	srv, addr := serve(t, standalone(ev, nil))
	idle := transcript(t, addr, false, s("EHLO client.test", `^250-`))
	busy := transcript(t, addr, false,
		s("EHLO client.test", `^250-`),
		s("MAIL FROM:<a@b.test>", `^250 `))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(ctx) }()

	// The idle client is closed; the busy one may finish its message.
	if got, err := idle.reply(); err == nil {
		t.Fatalf("idle connection still open after Shutdown: %q", got)
	}
	busy.run([]step{
		s("RCPT TO:<x@recv.test>", `^250 `),
		s("DATA", `^354 `),
		s(msg("a@b.test", "x@recv.test", "last", "x"), `^250 2\.0\.0 OK`),
	})
	ev.waitFor(t, "subject=last")
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return once the transaction ended")
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Fatal("listener still accepts after Shutdown")
	}
	ev.waitFor(t, "^stop$")
}

func TestShutdownDeadline(t *testing.T) {
	ev := &events{}
	srv, addr := serve(t, standalone(ev, nil))
	busy := transcript(t, addr, false,
		s("EHLO client.test", `^250-`),
		s("MAIL FROM:<a@b.test>", `^250 `))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown with a stalled transaction: %v, want deadline exceeded", err)
	}
	if got, err := busy.reply(); err == nil {
		t.Fatalf("connection still open after the deadline: %q", got)
	}
}

func TestHookTranscriptSTARTTLS(t *testing.T) {
	ev := &events{}
	env := startServer(t, func(o *Options) {
		submission(t)(o)
		o.Hooks.OnCommand = func(id, line string) { ev.add("C: %s", line) }
		o.Hooks.OnReply = func(id, line string) { ev.add("S: %s", line) }
	})
	transcript(t, env.addr, false, append(tlsAuth("alice@example.com", "alicepw"),
		s("MAIL FROM:<alice@example.com>", `^250 `))...)
	got := strings.Join(ev.all(), "\n")
	want := `C: EHLO client.test
S: 250 Hello client.test
C: STARTTLS
S: 220 2.0.0 Ready to start TLS
C: EHLO client.test
S: 250 Hello client.test
C: AUTH PLAIN
S: 235 2.0.0 Authentication succeeded
C: MAIL FROM:<alice@example.com>
S: 250 2.0.0 Roger, accepting mail from <alice@example.com>`
	if got != want {
		t.Errorf("transcript:\n%s\nwant:\n%s", got, want)
	}
}
