package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailsuite/mailsuite/mailstore"
)

func checkStore(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(append([]string{"check-store"}, args...), strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

// check-store on a tree the store wrote: clean, then damaged (exit 1),
// repaired (exit 0), clean again.
func TestCheckStoreCommand(t *testing.T) {
	cfgPath := writeTemp(t, shippedConfig(t))
	root := filepath.Join(filepath.Dir(cfgPath), "data", "mail")
	if code, _, stderr := checkStore(t, "-config", cfgPath); code != 1 || !strings.Contains(stderr, "no store at") {
		t.Fatalf("no store yet: %d %q", code, stderr)
	}
	s, err := mailstore.Open(mailstore.Options{Root: root, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{"Subject: one\n\nhi\n", "Subject: two\n\nhi\n"} {
		d, err := s.BeginDelivery()
		if err != nil {
			t.Fatal(err)
		}
		d.Write([]byte(body))
		if err := d.Commit(context.Background(), []string{"demo@example.com"}); err != nil {
			t.Fatal(err)
		}
	}
	u, err := s.User("demo@example.com")
	if err != nil {
		t.Fatal(err)
	}
	f, err := u.Folder(mailstore.Inbox)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	s.Close()

	code, stdout, stderr := checkStore(t, "-config", cfgPath)
	if code != 0 || !strings.Contains(stdout, "checked 1 user(s), 6 folder(s), 2 message(s) (0 not yet seen by a session): 0 problem(s), 0 repaired, 0 note(s)") {
		t.Fatalf("clean tree: %d %q %q", code, stdout, stderr)
	}

	// Damage: a file dropped into cur/ by hand, with a terminal escape in
	// its name, and a maildirfolder marker lost.
	inbox := filepath.Join(root, "example.com", "demo")
	if err := os.WriteFile(filepath.Join(inbox, "cur", "1700000000.hand\x1b[2J.host:2,S"), []byte("Subject: x\n\nhi\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(inbox, ".Sent", "maildirfolder")); err != nil {
		t.Fatal(err)
	}
	code, stdout, _ = checkStore(t, "-config", cfgPath)
	if code != 1 || !strings.Contains(stdout, "problem: no-uid: example.com/demo/cur/1700000000.hand?[2J.host:2,S (demo@example.com INBOX)") ||
		!strings.Contains(stdout, "problem: no-maildirfolder") || !strings.Contains(stdout, "2 problem(s)") {
		t.Fatalf("damaged tree: %d %q", code, stdout)
	}
	if strings.Contains(stdout, "\x1b") {
		t.Errorf("a file name's escape sequence reached the terminal: %q", stdout)
	}
	code, stdout, stderr = checkStore(t, "-repair", "-config", cfgPath)
	if code != 0 || !strings.Contains(stdout, "repaired: no-uid") || !strings.Contains(stdout, "0 problem(s), 2 repaired") {
		t.Fatalf("repair: %d %q %q", code, stdout, stderr)
	}
	code, stdout, _ = checkStore(t, "-config", cfgPath, "-user", "Demo@Example.com")
	if code != 0 || !strings.Contains(stdout, "checked 1 user(s), 6 folder(s), 3 message(s)") || !strings.Contains(stdout, "0 problem(s), 0 repaired, 0 note(s)") {
		t.Fatalf("after repair: %d %q", code, stdout)
	}
	if code, _, _ := checkStore(t, "-config", cfgPath, "extra"); code != 2 {
		t.Errorf("stray argument: exit %d", code)
	}
}
