package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/mailsuite/mailsuite/relay"
)

// Every queue command on a real queued message, as the admin runs them
// beside a server: list, show, retry, bounce, delete.
func TestQueueCommandsOnAMessage(t *testing.T) {
	dir := t.TempDir()
	q, err := relay.New(relay.Options{DataDir: dir, Hostname: "mail.example.com", LocalDomains: []string{"example.com"},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	// A header can carry terminal escape sequences; show must not pass
	// them to the admin's terminal.
	msg := "From: <alice@example.com>\r\nSubject: hi \x1b]0;pwned\x07\x1b[2J\xc2\x9b31m\r\n\r\nbody\r\n"
	id, err := q.Enqueue(context.Background(), "alice@example.com", []string{"bob@remote.test"}, strings.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCmd(t, "", "queue", "list", "-data", dir)
	if code != 0 || !strings.Contains(stdout, id) || !strings.Contains(stdout, "bob@remote.test") || !strings.Contains(stdout, "1 message(s)") {
		t.Fatalf("queue list: %d %q %q", code, stdout, stderr)
	}
	code, stdout, stderr = runCmd(t, "", "queue", "show", id, "-data", dir)
	if code != 0 || !strings.Contains(stdout, "Subject: hi ") || !strings.Contains(stdout, "Recipient: bob@remote.test") {
		t.Fatalf("queue show: %d %q %q", code, stdout, stderr)
	}
	if strings.ContainsAny(stdout, "\x1b\x07\u009b") {
		t.Errorf("queue show passes control characters through: %q", stdout)
	}
	for _, cmd := range []string{"retry", "bounce", "delete"} {
		if code, stdout, stderr = runCmd(t, "", "queue", cmd, id, "-data", dir); code != 0 || !strings.Contains(stdout, cmd+" done") {
			t.Fatalf("queue %s: %d %q %q", cmd, code, stdout, stderr)
		}
	}
	code, _, stderr = runCmd(t, "", "queue", "show", id, "-data", dir)
	if code != 1 || !strings.Contains(stderr, "no such queued message") {
		t.Errorf("show after delete: %d %q", code, stderr)
	}
	if code, stdout, _ = runCmd(t, "", "queue", "list", "-data", dir); !strings.Contains(stdout, "queue is empty") {
		t.Errorf("list after delete: %q", stdout)
	}
}
