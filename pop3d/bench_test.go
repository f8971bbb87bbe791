package pop3d

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Reference numbers, Dovecot on this machine (issue 4): login+STAT 28 ms
// (warm), UIDL 11 ms, RETR all 10,000 one by one 0.95 s, DELE all + QUIT
// 1.4 s, all on a 10,000-message maildrop.

const benchMessages = 10000

// benchEnv is a server with alice's INBOX holding benchMessages messages;
// plaintext login is allowed on loopback, as a local Dovecot test would be.
func benchEnv(b *testing.B) *testEnv {
	b.Helper()
	env := startServer(b, func(o *Options) { o.AllowInsecureAuth = true; o.TLSMode = TLSNone; o.TLSConfig = nil })
	env.fillMaildrop(benchMessages)
	return env
}

// fillMaildrop writes n messages straight into the INBOX's cur/ (faster
// than n durable deliveries) and lets the store index them.
func (env *testEnv) fillMaildrop(n int) {
	t := env.t
	if _, err := env.store.User(alice); err != nil {
		t.Fatal(err)
	}
	cur := filepath.Join(env.root, "example.org", "alice", "cur")
	if _, err := os.Stat(cur); err != nil {
		t.Fatalf("INBOX not where expected: %v", err)
	}
	body := strings.Repeat("The quick brown fox jumps over the lazy dog. 0123456789\r\n", 40)
	now := time.Now().UnixNano()
	for i := 0; i < n; i++ {
		msg := fmt.Sprintf("From: sender%d@example.net\r\nTo: alice@example.org\r\nSubject: message %d\r\nMessage-ID: <%d.bench@example.net>\r\n\r\n%s", i, i, i, body)
		name := fmt.Sprintf("%d.M%dP%d.bench,S=%d,W=%d:2,", now, i, os.Getpid(), len(msg), len(msg))
		if err := os.WriteFile(filepath.Join(cur, name), []byte(msg), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, msgs := env.inbox(alice); len(msgs) != n {
		t.Fatalf("indexed %d messages, want %d", len(msgs), n)
	}
}

func (env *testEnv) plainLogin() *client {
	c := env.dial()
	c.expect("+OK")
	c.send("USER "+alice, "PASS "+alicePass)
	c.expect("+OK")
	c.expect("+OK maildrop has " + strconv.Itoa(benchMessages))
	return c
}

func BenchmarkLoginStat(b *testing.B) {
	env := benchEnv(b)
	env.plainLogin().send("QUIT") // warm
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c := env.loginRetry2()
		c.send("STAT")
		c.expect("+OK " + strconv.Itoa(benchMessages) + " ")
		c.send("QUIT")
		c.expect("+OK")
		c.nc.Close()
	}
}

// loginRetry2 is plainLogin that waits for the previous session's lock.
func (env *testEnv) loginRetry2() *client {
	for i := 0; i < 200; i++ {
		c := env.dial()
		c.expect("+OK")
		c.send("USER "+alice, "PASS "+alicePass)
		c.expect("+OK")
		if l := c.expect(""); strings.HasPrefix(l, "+OK") {
			return c
		}
		c.nc.Close()
		time.Sleep(time.Millisecond)
	}
	env.t.Fatal("maildrop stayed locked")
	return nil
}

func BenchmarkUIDL(b *testing.B) {
	env := benchEnv(b)
	c := env.plainLogin()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.send("UIDL")
		c.expect("+OK")
		if n := len(c.multi()); n != benchMessages {
			b.Fatalf("UIDL listed %d", n)
		}
	}
}

func BenchmarkRetrAll(b *testing.B) {
	env := benchEnv(b)
	c := env.plainLogin()
	b.ResetTimer()
	var octets int64
	for i := 0; i < b.N; i++ {
		for n := 1; n <= benchMessages; n++ {
			c.send("RETR " + strconv.Itoa(n))
			c.expect("+OK")
			for _, l := range c.multi() {
				octets += int64(len(l) + 2)
			}
		}
	}
	b.SetBytes(octets / int64(b.N))
}

func BenchmarkDeleAllQuit(b *testing.B) {
	env := benchEnv(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if i > 0 {
			env.fillMaildrop(benchMessages)
		}
		// Warm, as the Dovecot reference was: one session has seen these
		// messages (their RETR sizes are cached).
		w := env.loginRetry2()
		w.send("QUIT")
		w.expect("+OK")
		w.nc.Close()
		b.StartTimer()
		c := env.loginRetry2()
		for n := 1; n <= benchMessages; n++ {
			c.send("DELE " + strconv.Itoa(n))
			c.expect("+OK")
		}
		c.send("QUIT")
		c.expect("+OK pop.example.org POP3 server signing off (10000 messages deleted)")
		c.nc.Close()
	}
}

// BenchmarkFirstLogin is login+STAT on 10,000 messages no POP3 session has
// seen yet: the session reads the last byte of each to learn its exact
// RETR size (then cached by the store).
func BenchmarkFirstLogin(b *testing.B) {
	env := benchEnv(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i > 0 {
			b.StopTimer()
			c := env.loginRetry2()
			for n := 1; n <= benchMessages; n++ {
				c.send("DELE " + strconv.Itoa(n))
				c.expect("+OK")
			}
			c.send("QUIT")
			c.expect("+OK")
			env.fillMaildrop(benchMessages)
			b.StartTimer()
		}
		c := env.loginRetry2()
		c.send("QUIT")
		c.expect("+OK")
		c.nc.Close()
	}
}
