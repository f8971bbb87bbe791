package pop3d

import (
	"net"
	"strings"
	"sync"
	"testing"
)

// TestHooks: every command (credentials redacted) and status line, the
// auth attempts, UPDATE and close.
func TestHooks(t *testing.T) {
	var mu sync.Mutex
	var log []string
	add := func(s string) { mu.Lock(); log = append(log, s); mu.Unlock() }
	env := withMessages(t, func(o *Options) {
		o.Hooks = Hooks{
			OnCommand: func(id, line string) { add("C " + line) },
			OnReply:   func(id, line string) { add("S " + line) },
			OnAuth: func(remote net.Addr, user, mech string, ok bool) {
				add("auth " + user + " " + mech + " " + map[bool]string{true: "ok", false: "fail"}[ok])
			},
			OnUpdate: func(id, user string, deleted int, err error) {
				add("update " + user + " " + map[bool]string{true: "1", false: "?"}[deleted == 1 && err == nil])
			},
			OnClose: func(id string) { add("close") },
		}
	})
	c := env.dial()
	c.expect("+OK")
	c.stls(env.clientTLS)
	c.run(`
C: AUTH PLAIN ` + b64("\x00alice@example.org\x00bad") + `
S: -ERR
C: AUTH LOGIN
S: +
C: ` + b64(alice) + `
S: +
C: ` + b64(alicePass) + `
S: +OK
C: DELE 2
S: +OK
C: QUIT
S: +OK
`)
	c.expectClosed()
	want := []string{
		"S +OK pop.example.org POP3 server ready",
		"C STLS", "S +OK begin TLS negotiation",
		"C AUTH PLAIN <redacted>", "auth  PLAIN fail", "S -ERR [AUTH] authentication failed",
		"C AUTH LOGIN", "S + VXNlcm5hbWU6", "C <redacted>", "S + UGFzc3dvcmQ6", "C <redacted>",
		"auth alice@example.org LOGIN ok", "S +OK maildrop has 3 messages (",
		"C DELE 2", "S +OK message 2 deleted",
		"C QUIT", "update alice@example.org 1", "S +OK pop.example.org POP3 server signing off (1 message deleted)",
		"close",
	}
	for i := 0; i < 100; i++ { // OnClose runs after the socket closes
		mu.Lock()
		n := len(log)
		mu.Unlock()
		if n >= len(want) {
			break
		}
		sleepMillis(10)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(log) != len(want) {
		t.Fatalf("hook log:\n%s", strings.Join(log, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(log[i], want[i]) {
			t.Errorf("hook %d: %q, want %q", i, log[i], want[i])
		}
	}
	for _, l := range log {
		if strings.Contains(l, alicePass) || strings.Contains(l, b64(alicePass)) {
			t.Errorf("credential leaked to hooks: %q", l)
		}
	}
}
