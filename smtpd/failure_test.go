package smtpd

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mailsuite/mailsuite/mailstore"
)

// brokenFS fails every file creation with err.
type brokenFS struct{ err error }

func (b brokenFS) Create(path string) (mailstore.File, error) {
	return nil, &os.PathError{Op: "open", Path: path, Err: b.err}
}

func TestStoreFailureIsTemporary(t *testing.T) {
	for _, tc := range []struct {
		name  string
		err   error
		reply string
	}{
		{"unknown", errors.New("input/output error, no space left on device"), `^451 4\.3\.0 Temporary failure, please try again later \(id \w+\)$`},
		{"disk full", syscall.ENOSPC, `^452 4\.3\.1 Insufficient system storage, please try again later \(id \w+\)$`},
		{"file-system quota", syscall.EDQUOT, `^452 4\.3\.1 `},
	} {
		t.Run(tc.name, func(t *testing.T) { storeFailure(t, tc.err, tc.reply) })
	}
}

func storeFailure(t *testing.T, fsErr error, want string) {
	logged := &logBuffer{}
	env := startServer(t, func(o *Options) {
		st, err := mailstore.Open(mailstore.Options{Root: t.TempDir(), Hostname: "mx.test", FS: brokenFS{fsErr}, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		o.Store = st
		o.Logger = slog.New(slog.NewTextHandler(logged, nil))
	})
	c := transcript(t, env.addr, false,
		s("EHLO client.test", `^250-`),
		s("MAIL FROM:<a@remote.test>", `^250 `),
		s("RCPT TO:<alice@example.com>", `^250 `),
		s("RCPT TO:<bob@example.com>", `^250 `),
		s("DATA", `^354 `),
		s(msg("a@remote.test", "alice@example.com", "x", "y"), want),
	)
	id := c.lastID(t)
	if strings.Contains(c.last, "space") || strings.Contains(c.last, "quota") {
		t.Errorf("internal error reached the client: %q", c.last)
	}
	if out := logged.String(); !strings.Contains(out, "id="+id) || !strings.Contains(out, fsErr.Error()) {
		t.Errorf("log does not name id %s and the cause:\n%s", id, out)
	}
}

func TestRelayFailureAfterLocalCommit(t *testing.T) {
	env := startServer(t, submission(t))
	env.relay.fail = errors.New("queue full")
	transcript(t, env.addr, false, append(tlsAuth("alice@example.com", "alicepw"),
		s("MAIL FROM:<alice@example.com>", `^250 `),
		s("RCPT TO:<bob@example.com>", `^250 `),
		s("RCPT TO:<friend@remote.test>", `^250 `),
		s("DATA", `^354 `),
		s(msg("alice@example.com", "bob@example.com", "x", "y"), `^451 4\.3\.0`),
	)...)
	// The documented order: local copies are committed before the relay
	// is asked, so a relay failure leaves them (a retry may duplicate them
	// locally, never remotely).
	if n := len(env.inbox(t, "bob@example.com")); n != 1 {
		t.Errorf("bob has %d messages, want 1", n)
	}
}

// TestNoTempFilesLeft: deliveries opened ahead of DATA (spare.go) are
// removed when the transaction or the connection ends without a message.
func TestNoTempFilesLeft(t *testing.T) {
	env := startServer(t, nil)
	transcript(t, env.addr, false,
		s("EHLO client.test", `^250-`),
		s("MAIL FROM:<a@remote.test>", `^250 `),
		s("RCPT TO:<alice@example.com>", `^250 `),
		s("RSET", `^250 `),
		s("MAIL FROM:<a@remote.test>", `^250 `),
		s("RCPT TO:<bob@example.com>", `^250 `),
		s("DATA", `^354 `),
		s(msg("a@remote.test", "bob@example.com", "x", "y"), `^250 `),
		s("MAIL FROM:<a@remote.test>", `^250 `),
		s("RCPT TO:<alice@example.com>", `^250 `),
		s("QUIT", `^221 `),
	)
	env.noTempFiles(t)
}

// noTempFiles waits briefly for the store's temp directory to be empty.
func (e *testEnv) noTempFiles(t *testing.T) {
	t.Helper()
	tmp := filepath.Join(e.root, ".mailsuite-tmp") // mailstore's tmpDirName
	var entries []os.DirEntry
	for range 100 {
		entries, _ = os.ReadDir(tmp)
		if len(entries) == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("%d files left in %s", len(entries), tmp)
}

// TestClientGoneMidData: a client that disconnects inside DATA leaves no
// message, no temp file and no error report (it is not our failure).
func TestClientGoneMidData(t *testing.T) {
	ev := &events{}
	env := startServer(t, func(o *Options) {
		o.Hooks.OnError = func(id string, err error) { ev.add("error %v", err) }
		o.Hooks.OnClose = func(id string) { ev.add("close") }
	})
	c := transcript(t, env.addr, false,
		s("EHLO client.test", `^250-`),
		s("MAIL FROM:<a@remote.test>", `^250 `),
		s("RCPT TO:<alice@example.com>", `^250 `),
		s("DATA", `^354 `),
		s("Subject: cut\r\n\r\nhalf a messa"),
	)
	c.conn.Close()
	ev.waitFor(t, "^close$")
	if got := ev.all(); len(got) != 1 {
		t.Errorf("events %q, want only close", got)
	}
	if n := len(env.inbox(t, "alice@example.com")); n != 0 {
		t.Errorf("alice got %d messages", n)
	}
	env.noTempFiles(t)
}
