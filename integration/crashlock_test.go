package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A process killed while it holds a folder's dovecot-uidlist.lock leaves
// the lock file behind (nothing can remove it). The restarted server must
// see that the lock is dead and take it over within seconds, as Dovecot's
// dotlocks do; otherwise nobody can open the folder until the lock is old
// enough to count as stale (2 min). Two shapes are left in practice: the
// lock with "<pid>:<hostname>" of the killed process, and an empty lock
// when the kill came between creating the file and writing the PID (seen
// in TestCrashSafety). Each is planted with the killed child's real PID;
// SELECT and POP3 login must work within 10 s.
func TestRestartAfterCrashWithUIDListLockHeld(t *testing.T) {
	for _, tc := range []struct {
		name    string
		content func(pid int) string
	}{
		{"pid of the killed process", func(pid int) string {
			host, _ := os.Hostname()
			return strconv.Itoa(pid) + ":" + host
		}},
		{"empty, killed before writing its pid", func(int) string { return "" }},
	} {
		t.Run(tc.name, func(t *testing.T) { restartWithLock(t, tc.content) })
	}
}

func restartWithLock(t *testing.T, content func(pid int) string) {
	dir := t.TempDir()
	ini := filepath.Join(dir, "mail.ini")
	if err := os.WriteFile(ini, []byte(configWith(officeAliases, crashUsers...)), 0o600); err != nil {
		t.Fatal(err)
	}
	c := startChild(t, ini)
	tc := clientTLS(t, filepath.Join(dir, "data"))
	m := newMessage("someone@example.net", "bob@example.com", "after the crash", 1000)
	if err := sendMX(c.addrs["smtp"], tc, "someone@example.net", []string{"bob@example.com"}, m.Raw); err != nil {
		t.Fatal(err)
	}
	dead := c.cmd.Process.Pid
	c.kill()
	lock := plantDeadLock(t, filepath.Join(dir, "data", "mail", "example.com", "bob"), dead, content(dead))

	c = startChild(t, ini)
	// The new message has no UID yet: opening INBOX must take the lock.
	err := within(10*time.Second, func() error {
		ic, err := dialIMAPS(c.addrs["imaps"], tc, "bob@example.com", users["bob@example.com"], nil)
		if err != nil {
			return err
		}
		defer ic.Close()
		_, msgs, err := fetchAll(ic, "INBOX", true)
		if err == nil && len(msgs) != 1 {
			err = fmt.Errorf("INBOX has %d messages, want 1", len(msgs))
		}
		return err
	})
	if err != nil {
		t.Errorf("IMAP after a crash that left %s: %v", lock, err)
	}
	err = within(5*time.Second, func() error {
		p, err := dialPOP3S(c.addrs["pop3s"], tc, "bob@example.com", users["bob@example.com"])
		if err != nil {
			return err
		}
		return p.quit()
	})
	if err != nil {
		t.Errorf("POP3 after a crash that left %s: %v", lock, err)
	}
}

// plantDeadLock writes the dotlock a killed process leaves in a folder
// and describes it.
func plantDeadLock(t *testing.T, folder string, pid int, content string) string {
	t.Helper()
	if err := syscall.Kill(pid, 0); err != syscall.ESRCH {
		t.Fatalf("PID %d is not dead (%v)", pid, err)
	}
	lock := filepath.Join(folder, "dovecot-uidlist.lock")
	if err := os.WriteFile(lock, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("dovecot-uidlist.lock holding %q (PID %d is dead)", content, pid)
}

// staleLocks finds dovecot-uidlist.lock files under root that no live
// process holds: with a dead PID, or empty and older than two seconds (the
// writer died between creating and writing it).
func staleLocks(root string) []string {
	var out []string
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "dovecot-uidlist.lock" {
			return nil
		}
		data, _ := os.ReadFile(p)
		pidText, _, _ := strings.Cut(strings.TrimSpace(string(data)), ":")
		if pid, err := strconv.Atoi(pidText); err == nil && syscall.Kill(pid, 0) == syscall.ESRCH {
			out = append(out, p)
		} else if st, err := os.Stat(p); err == nil && len(data) == 0 && time.Since(st.ModTime()) > 2*time.Second {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// within runs f and gives up after limit (f's connections are closed by
// its own defers when it returns later).
func within(limit time.Duration, f func() error) error {
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(limit):
		return fmt.Errorf("no answer within %v", limit)
	}
}
