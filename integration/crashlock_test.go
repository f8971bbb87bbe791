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
// see that the PID in it is dead and take the lock over at once, as
// Dovecot's dotlocks do; otherwise nobody can open the folder until the
// lock is old enough to count as stale. This test plants what a SIGKILLed
// `mailsuite serve` (or Dovecot) leaves, "<pid>:<hostname>" with the killed
// child's real PID, and requires SELECT and POP3 login to work within a
// few seconds (Dovecot trusts a fresh lock for 2 s before checking its
// PID).
func TestRestartAfterCrashWithUIDListLockHeld(t *testing.T) {
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
	plantDeadLock(t, filepath.Join(dir, "data", "mail", "example.com", "bob"), dead)

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
		t.Errorf("IMAP after a crash that left dovecot-uidlist.lock (PID %d, dead): %v", dead, err)
	}
	err = within(5*time.Second, func() error {
		p, err := dialPOP3S(c.addrs["pop3s"], tc, "bob@example.com", users["bob@example.com"])
		if err != nil {
			return err
		}
		return p.quit()
	})
	if err != nil {
		t.Errorf("POP3 after a crash that left dovecot-uidlist.lock (PID %d, dead): %v", dead, err)
	}
}

// plantDeadLock writes the dotlock a killed process leaves in a folder.
func plantDeadLock(t *testing.T, folder string, pid int) {
	t.Helper()
	if err := syscall.Kill(pid, 0); err != syscall.ESRCH {
		t.Fatalf("PID %d is not dead (%v)", pid, err)
	}
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	lock := filepath.Join(folder, "dovecot-uidlist.lock")
	if err := os.WriteFile(lock, []byte(strconv.Itoa(pid)+":"+host), 0o600); err != nil {
		t.Fatal(err)
	}
}

// staleLocks finds dovecot-uidlist.lock files under root whose PID is dead
// (left by a killed process).
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
