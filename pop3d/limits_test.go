package pop3d

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailsuite/mailsuite/accounts"
)

// TestLineLimits: over-long lines get -ERR and the session goes on; AUTH
// lines may be longer (RFC 5034 initial responses).
func TestLineLimits(t *testing.T) {
	env := startServer(t, func(o *Options) { o.MaxLineLength = 64; o.MaxAuthLineLength = 256 })
	c := env.dial()
	c.expect("+OK")
	c.stls(env.clientTLS)
	long := strings.Repeat("x", 100)
	c.run(`
C: NOOP ` + long + `
S= -ERR line too long
C: NOOP ` + strings.Repeat("y", 5000) + `
S= -ERR line too long
C: AUTH PLAIN ` + b64("\x00alice@example.org\x00"+alicePass+strings.Repeat(" ", 60)) + `
S= -ERR [AUTH] authentication failed
C: AUTH PLAIN
S: +
C: ` + strings.Repeat("QUFB", 100) + `
S= -ERR SASL response too long
C: AUTH PLAIN ` + b64("\x00alice@example.org\x00"+alicePass) + `
S: +OK maildrop has
`)
}

// TestBadCommands: garbage gets -ERR, never a crash, and too much of it
// ends the session.
func TestBadCommands(t *testing.T) {
	env := startServer(t, func(o *Options) { o.MaxBadCommands = 5 })
	c := env.dial()
	c.expect("+OK")
	c.send("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03") // a TLS ClientHello on the plaintext port
	c.expect("-ERR control characters")
	c.run(`
C: 
S= -ERR empty command
C: RETRIEVE 1
S= -ERR malformed command keyword
C: LIST 1
S= -ERR not allowed before login
C: HELO
S= -ERR too many bad commands, closing connection
`)
	c.expectClosed()
	// The server is still serving.
	c = env.dial()
	c.run(`
S: +OK
C: NOOP
S: -ERR not allowed before login
`)
}

// TestIdleTimeout: an idle session is logged out (RFC 1939 §3), without
// entering UPDATE.
func TestIdleTimeout(t *testing.T) {
	env := withMessages(t, func(o *Options) { o.IdleTimeout = 300 * time.Millisecond })
	c := env.login(alice, alicePass)
	c.run(`
C: DELE 1
S: +OK
`)
	c.expect("-ERR autologout")
	c.expectClosed()
	c2 := env.loginRetry(alice, alicePass)
	c2.run(`
C: STAT
S: +OK 3 
`)
}

// TestConnectionLimits: the per-IP cap answers a temporary -ERR instead
// of a greeting, and the OnConnect hook refuses before the greeting.
func TestConnectionLimits(t *testing.T) {
	env := startServer(t, func(o *Options) { o.MaxConnsPerIP = 1 })
	c1 := env.dial()
	c1.expect("+OK")
	c2 := env.dial()
	c2.expect("-ERR [SYS/TEMP] too many connections, try again later")
	c2.expectClosed()
	c1.nc.Close()

	var mu sync.Mutex
	var asked []string
	env = startServer(t, func(o *Options) {
		o.Hooks.OnConnect = func(remote net.Addr) bool {
			mu.Lock()
			defer mu.Unlock()
			asked = append(asked, remote.String())
			return len(asked) > 1
		}
	})
	env.dial().expectClosed()
	env.dial().expect("+OK")
	mu.Lock()
	defer mu.Unlock()
	if len(asked) != 2 {
		t.Fatalf("OnConnect asked %d times", len(asked))
	}
}

// TestShutdown: idle sessions are told and closed; Serve returns.
func TestShutdown(t *testing.T) {
	env := withMessages(t)
	c := env.login(alice, alicePass)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := env.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	c.expect("-ERR [SYS/TEMP] server shutting down")
	c.expectClosed()
	if err := <-env.serveErr; err != ErrServerClosed {
		t.Fatalf("Serve returned %v", err)
	}
	if _, msgs := env.inbox(alice); len(msgs) != 3 {
		t.Fatalf("%d messages after shutdown", len(msgs))
	}
}

// TestShutdownFinishesInFlight: a RETR under way when Shutdown starts is
// sent in full; the session then ends with [SYS/TEMP].
func TestShutdownFinishesInFlight(t *testing.T) {
	env := startServer(t)
	big := "Subject: big\r\n\r\n" + strings.Repeat(strings.Repeat("y", 78)+"\r\n", 50000)
	env.deliver(alice, big)
	c := env.login(alice, alicePass)
	c.send("RETR 1")
	c.expect("+OK")
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- env.srv.Shutdown(ctx)
	}()
	time.Sleep(50 * time.Millisecond) // let Shutdown start while the server is blocked writing
	if n := len(strings.Join(c.multi(), "\r\n")) + 2; n != len(big) {
		t.Fatalf("received %d octets, want %d", n, len(big))
	}
	c.expect("-ERR [SYS/TEMP] server shutting down")
	c.expectClosed()
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// TestRemovedUserSessionClosed: removing or disabling a user in the account
// list ends their sessions, deleting nothing.
func TestRemovedUserSessionClosed(t *testing.T) {
	env := withMessages(t)
	ca := env.login(alice, alicePass)
	cb := env.login(bob, bobPass)
	ca.run(`
C: DELE 1
S: +OK
`)
	cfg := testAccounts()
	cfg.Users = []accounts.User{cfg.Users[1]} // alice removed
	if err := env.dir.Update(cfg); err != nil {
		t.Fatal(err)
	}
	ca.expectClosed()
	cb.run(`
C: NOOP
S= +OK
`)
	cfg.Users[0].Disabled = true // bob disabled
	if err := env.dir.Update(cfg); err != nil {
		t.Fatal(err)
	}
	cb.expectClosed()
	if _, msgs := env.inbox(alice); len(msgs) != 3 {
		t.Fatalf("%d messages after removal, want 3", len(msgs))
	}
}

// TestWriteTimeout: a client that stops reading in the middle of a RETR is
// dropped after WriteTimeout, and its session ends (deleting nothing).
func TestWriteTimeout(t *testing.T) {
	closed := make(chan string, 4)
	env := startServer(t, func(o *Options) {
		o.WriteTimeout = 200 * time.Millisecond
		o.Hooks.OnClose = func(id string) { closed <- id }
	})
	env.deliver(alice, "Subject: big\r\n\r\n"+strings.Repeat(strings.Repeat("x", 998)+"\r\n", 16<<10))
	c := env.login(alice, alicePass)
	c.send("DELE 1", "RSET", "RETR 1") // then read nothing
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("session not dropped while the client did not read")
	}
	if _, msgs := env.inbox(alice); len(msgs) != 1 {
		t.Fatalf("%d messages, want 1", len(msgs))
	}
}
