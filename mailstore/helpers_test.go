package mailstore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func openStore(t testing.TB, root string, mod ...func(*Options)) *Store {
	t.Helper()
	opts := Options{Root: root, Hostname: "test.example", PollInterval: 20 * time.Millisecond}
	for _, m := range mod {
		m(&opts)
	}
	s, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func deliver(t testing.TB, s *Store, body string, users ...string) {
	t.Helper()
	if err := tryDeliver(s, body, users...); err != nil {
		t.Fatal(err)
	}
}

func tryDeliver(s *Store, body string, users ...string) error {
	d, err := s.BeginDelivery()
	if err != nil {
		return err
	}
	if _, err := d.Write([]byte(body)); err != nil {
		d.Abort()
		return err
	}
	return d.Commit(context.Background(), users)
}

func mustUser(t testing.TB, s *Store, name string) *User {
	t.Helper()
	u, err := s.User(name)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func mustFolder(t testing.TB, u *User, name string) *Folder {
	t.Helper()
	f, err := u.Folder(name)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func mustSync(t testing.TB, f *Folder) []MessageInfo {
	t.Helper()
	msgs, err := f.Sync()
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

func msg(i int) string {
	return fmt.Sprintf("From: a@example.com\nSubject: message %d\n\nbody %d\n", i, i)
}

// filesIn lists a maildir subdirectory.
func filesIn(t testing.TB, dir string) []string {
	t.Helper()
	names, err := readDirNames(dir)
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// treeFiles lists every file under root (relative), for "nothing escaped"
// checks.
func treeFiles(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err == nil {
			rel, _ := filepath.Rel(root, p)
			out = append(out, rel)
		}
		return nil
	})
	return out
}

func flagsString(fl []Flag) string {
	s := make([]string, len(fl))
	for i, f := range fl {
		s[i] = string(f)
	}
	return strings.Join(s, " ")
}
