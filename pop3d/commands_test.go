package pop3d

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/mailsuite/mailsuite/mailstore"
)

const (
	msg1 = "From: a@example.net\r\nSubject: one\r\n\r\nfirst line\r\n.dotted\r\nlast\r\n"
	msg2 = "From: b@example.net\nSubject: two\n\nbare LF body\n.\n..two dots\n"
	msg3 = "From: c@example.net\r\nSubject: three\r\n\r\nno newline at the end"
)

// crlf is how a client reassembles a message: every line ending CRLF,
// including a last line that had none.
func crlf(s string) string {
	s = strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n")
	if s != "" && !strings.HasSuffix(s, "\r\n") {
		s += "\r\n"
	}
	return s
}

func withMessages(t *testing.T, mods ...func(*Options)) *testEnv {
	env := startServer(t, mods...)
	for _, m := range []string{msg1, msg2, msg3} {
		env.deliver(alice, m)
	}
	return env
}

// TestTransaction walks every TRANSACTION command and its errors.
func TestTransaction(t *testing.T) {
	env := withMessages(t)
	s1, s2, s3 := len(crlf(msg1)), len(crlf(msg2)), len(crlf(msg3))
	total := s1 + s2 + s3
	c := env.login(alice, alicePass)
	c.run(fmt.Sprintf(`
C: STAT
S= +OK 3 %d
C: LIST
S= +OK 3 messages (%d octets)
S= 1 %d
S= 2 %d
S= 3 %d
S= .
C: LIST 2
S= +OK 2 %d
C: LIST 4
S= -ERR no such message
C: LIST 0
S: -ERR invalid message number
C: LIST x
S: -ERR invalid message number
C: LIST 1 2
S: -ERR LIST takes at most one argument
C: UIDL
S= +OK unique-id listing follows
S~ 1 [0-9a-f]{16}
S~ 2 [0-9a-f]{16}
S~ 3 [0-9a-f]{16}
S= .
C: UIDL 3
S~ \+OK 3 [0-9a-f]{16}
C: UIDL 9
S= -ERR no such message
C: TOP 1 0
S= +OK top of message follows
S= From: a@example.net
S= Subject: one
S= 
S= .
C: TOP 2 1
S: +OK
S= From: b@example.net
S= Subject: two
S= 
S= bare LF body
S= .
C: TOP 2
S: -ERR TOP needs
C: TOP 2 -1
S: -ERR invalid line count
C: RETR 1
S= +OK %d octets
S= From: a@example.net
S= Subject: one
S= 
S= first line
S= ..dotted
S= last
S= .
C: NOOP
S= +OK
C: DELE 1
S= +OK message 1 deleted
C: DELE 1
S= -ERR no such message
C: RETR 1
S= -ERR no such message
C: TOP 1 1
S= -ERR no such message
C: LIST 1
S= -ERR no such message
C: STAT
S= +OK 2 %d
C: LIST
S: +OK 2 messages
S= 2 %d
S= 3 %d
S= .
C: RSET
S= +OK maildrop has 3 messages (%d octets)
C: STAT
S= +OK 3 %d
C: USER bob
S: -ERR already logged in
C: STLS
S: -ERR already logged in
C: XYZW
S= -ERR unknown command
C: QUIT
S: +OK pop.example.org POP3 server signing off (0 messages deleted)
`, total, total, s1, s2, s3, s2, s1, s2+s3, s2, s3, total, total))
	c.expectClosed()
	if _, msgs := env.inbox(alice); len(msgs) != 3 {
		t.Fatalf("RSET then QUIT left %d messages, want 3", len(msgs))
	}
}

// TestListSizesAreRetrOctets checks, for CRLF, bare-LF and unterminated
// messages, that LIST's size is exactly what RETR sends before
// dot-stuffing, and that RETR sends the delivered message.
func TestListSizesAreRetrOctets(t *testing.T) {
	env := withMessages(t)
	c := env.login(alice, alicePass)
	for i, m := range []string{msg1, msg2, msg3} {
		n := i + 1
		c.send("LIST " + strconv.Itoa(n))
		l := c.expect("+OK " + strconv.Itoa(n) + " ")
		size, _ := strconv.Atoi(strings.Fields(l)[2])
		c.send("RETR " + strconv.Itoa(n))
		c.expect("+OK " + strconv.Itoa(size) + " octets")
		var got strings.Builder
		for _, line := range c.multi() {
			got.WriteString(strings.TrimPrefix(line, ".") + "\r\n")
		}
		if got.String() != crlf(m) {
			t.Errorf("message %d: RETR sent %q, want %q", n, got.String(), crlf(m))
		}
		if got.Len() != size {
			t.Errorf("message %d: LIST says %d octets, RETR sent %d", n, size, got.Len())
		}
	}
}

// TestDeleQuitExpungesDurably checks that QUIT removes the messages from the
// store (and disk) before +OK, and that a watcher sees the expunge.
func TestDeleQuitExpungesDurably(t *testing.T) {
	env := withMessages(t)
	u, err := env.store.User(alice)
	if err != nil {
		t.Fatal(err)
	}
	events, cancel := u.Watch()
	defer cancel()
	_, before := env.inbox(alice)
	c := env.login(alice, alicePass)
	c.run(`
C: DELE 1
C: DELE 3
S: +OK
S: +OK
C: QUIT
S= +OK pop.example.org POP3 server signing off (2 messages deleted)
`)
	_, after := env.inbox(alice)
	if len(after) != 1 || after[0].UID != before[1].UID {
		t.Fatalf("after QUIT: %+v, want only UID %d", after, before[1].UID)
	}
	// The mailstore reopened from disk agrees (nothing left in memory only).
	st2, err := mailstore.Open(mailstore.Options{Root: env.root})
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	u2, _ := st2.User(alice)
	f2, _ := u2.Folder(mailstore.Inbox)
	if msgs, err := f2.Sync(); err != nil || len(msgs) != 1 {
		t.Fatalf("reopened store: %d messages, %v", len(msgs), err)
	}
	waitExpunge(t, events, before[0].UID, before[2].UID)
}

func waitExpunge(t *testing.T, events <-chan mailstore.Event, uids ...mailstore.UID) {
	t.Helper()
	want := map[mailstore.UID]bool{}
	for _, u := range uids {
		want[u] = true
	}
	timeout := timeAfter(5)
	for len(want) > 0 {
		select {
		case ev := <-events:
			if ev.Kind == mailstore.EventExpunge && ev.Folder == mailstore.Inbox {
				for _, u := range ev.UIDs {
					delete(want, u)
				}
				if len(ev.UIDs) == 0 {
					return // detected on disk: watchers re-sync
				}
			}
		case <-timeout:
			t.Fatalf("no expunge event for %v", want)
		}
	}
}

// TestDroppedConnectionDeletesNothing: DELE then a dropped connection.
func TestDroppedConnectionDeletesNothing(t *testing.T) {
	env := withMessages(t)
	c := env.login(alice, alicePass)
	c.run(`
C: DELE 1
C: DELE 2
C: DELE 3
S: +OK
S: +OK
S: +OK
`)
	c.nc.Close()
	c2 := env.loginRetry(alice, alicePass)
	c2.run(`
C: STAT
S: +OK 3 
C: QUIT
S: +OK
`)
	if _, msgs := env.inbox(alice); len(msgs) != 3 {
		t.Fatalf("%d messages left, want 3", len(msgs))
	}
}

// loginRetry logs in, retrying while the previous session still holds the
// maildrop lock (it is released when the server notices the close).
func (env *testEnv) loginRetry(user, pass string) *client {
	env.t.Helper()
	for i := 0; i < 100; i++ {
		c := env.dial()
		c.expect("+OK")
		c.stls(env.clientTLS)
		c.send("USER "+user, "PASS "+pass)
		c.expect("+OK")
		l := c.expect("")
		if strings.HasPrefix(l, "+OK maildrop has") {
			return c
		}
		if !strings.HasPrefix(l, "-ERR [IN-USE]") {
			env.t.Fatalf("login: %q", l)
		}
		c.nc.Close()
		sleepMillis(20)
	}
	env.t.Fatal("maildrop still locked after 2s")
	return nil
}

// TestInUse: a second session of the same user gets [IN-USE] (RFC 2449
// §8.1.1), stays in AUTHORIZATION, and can log in once the first quits.
func TestInUse(t *testing.T) {
	env := withMessages(t)
	c1 := env.login(alice, alicePass)
	c2 := env.dial()
	c2.expect("+OK")
	c2.stls(env.clientTLS)
	c2.run(`
C: USER alice@example.org
C: PASS correct horse
S: +OK
S= -ERR [IN-USE] maildrop is locked by another session
C: STAT
S: -ERR not allowed before login
`)
	c1.run(`
C: QUIT
S: +OK
`)
	c2.nc.Close()
	env.loginRetry(alice, alicePass)
}

// TestRetrMarksSeen: RETR sets \Seen (visible to IMAP through the store),
// TOP does not, and the option turns it off.
func TestRetrMarksSeen(t *testing.T) {
	for _, mark := range []bool{true, false} {
		t.Run(strconv.FormatBool(mark), func(t *testing.T) {
			env := withMessages(t, func(o *Options) { o.MarkSeenOnRetr = &mark })
			c := env.login(alice, alicePass)
			c.run(`
C: RETR 1
S: +OK
S: ...
C: TOP 2 5
S: +OK
S: ...
C: QUIT
S: +OK
`)
			_, msgs := env.inbox(alice)
			seen := func(i int) bool {
				for _, f := range msgs[i].Flags {
					if f == mailstore.FlagSeen {
						return true
					}
				}
				return false
			}
			if seen(0) != mark || seen(1) || seen(2) {
				t.Fatalf("seen flags %v %v %v, want %v false false", seen(0), seen(1), seen(2), mark)
			}
		})
	}
}

// TestUIDLStable: Dovecot's form, the same across sessions, flag changes
// and a restart of store and server.
func TestUIDLStable(t *testing.T) {
	env := withMessages(t)
	f, msgs := env.inbox(alice)
	var want []string
	for i, m := range msgs {
		want = append(want, fmt.Sprintf("%d %08x%08x", i+1, uint32(m.UID), f.UIDValidity()))
	}
	uidl := func() []string {
		c := env.loginRetry(alice, alicePass)
		c.send("UIDL")
		c.expect("+OK")
		got := c.multi()
		c.send("QUIT")
		c.expect("+OK")
		return got
	}
	if got := uidl(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("UIDL %q, want %q", got, want)
	}
	// IMAP flag changes rename the maildir files.
	if _, err := f.SetFlags([]mailstore.UID{msgs[0].UID, msgs[2].UID}, mailstore.FlagsAdd,
		[]mailstore.Flag{mailstore.FlagFlagged, mailstore.FlagAnswered}); err != nil {
		t.Fatal(err)
	}
	if got := uidl(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("after flag change UIDL %q, want %q", got, want)
	}
	// Restart: a fresh store over the same tree and a fresh server.
	env.srv.Close()
	env.store.Close()
	st, err := mailstore.Open(mailstore.Options{Root: env.root})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	env.store = st
	env.start()
	if got := uidl(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("after restart UIDL %q, want %q", got, want)
	}
}

// TestEmptyMaildrop: every command on an empty maildrop.
func TestEmptyMaildrop(t *testing.T) {
	env := startServer(t)
	c := env.login(bob, bobPass)
	c.run(`
C: STAT
S= +OK 0 0
C: LIST
S= +OK 0 messages (0 octets)
S= .
C: UIDL
S: +OK
S= .
C: RETR 1
S= -ERR no such message
C: QUIT
S: +OK
`)
}

// TestPipelining: a whole session in one write (RFC 2449 §6.6), answered
// in order.
func TestPipelining(t *testing.T) {
	env := withMessages(t)
	c := env.dial()
	c.expect("+OK")
	c.stls(env.clientTLS)
	c.run(`
C: CAPA
C: USER alice@example.org
C: PASS correct horse
C: STAT
C: TOP 1 0
C: RETR 2
C: LIST
C: DELE 3
C: UIDL 3
C: NOOP
C: QUIT
S: +OK capability list follows
S: ...
S= +OK send PASS
S: +OK maildrop has 3 messages
S: +OK 3 
S: +OK top of message follows
S: ...
S: +OK
S= From: b@example.net
S: ...
S: +OK 3 messages
S: ...
S= +OK message 3 deleted
S= -ERR no such message
S= +OK
S= +OK pop.example.org POP3 server signing off (1 message deleted)
`)
	c.expectClosed()
}

// TestSnapshot: the maildrop is fixed at login (RFC 1939 §8); mail that
// arrives meanwhile shows up in the next session and is never deleted by
// this one.
func TestSnapshot(t *testing.T) {
	env := withMessages(t)
	c := env.login(alice, alicePass)
	env.deliver(alice, "Subject: late\r\n\r\narrived during the session\r\n")
	c.run(`
C: STAT
S: +OK 3 
C: DELE 1
C: DELE 2
C: DELE 3
C: RETR 4
S: +OK
S: +OK
S: +OK
S= -ERR no such message
C: QUIT
S: +OK pop.example.org POP3 server signing off (3 messages deleted)
`)
	c = env.loginRetry(alice, alicePass)
	c.run(`
C: TOP 1 0
S: +OK
S= Subject: late
S= 
S= .
`)
}
