package integration

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailsuite/mailsuite"
	"github.com/mailsuite/mailsuite/mailstore"
)

// A full disk, for real: the data dir is a 2 MiB tmpfs. Root may mount one
// here and in CI; where mount is refused this test skips and the
// StoreFS-injected ENOSPC test below still covers the path.
func TestDiskFullTmpfs(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", data).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v %s); TestDiskFullInjected covers ENOSPC through Options.StoreFS", err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", data).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", data, err, out)
		}
	})
	h := startSuiteIn(t, dir, configWith(officeAliases, "alice@example.com", "bob@example.com", "dave@example.com"), mailsuite.Options{})
	first := h.deliverOK(t, "before the disk fills")
	// Both have logged in (default folders made, UIDs assigned) before the
	// disk fills: reading what is there must keep working while it is full.
	h.onlyThese(t, "bob@example.com", first)
	h.onlyThese(t, "dave@example.com", first)

	// Fill the file system to the last byte.
	filler := filepath.Join(data, "filler")
	fillDisk(t, filler)

	for _, size := range []int{200, 100_000} {
		m := newMessage("alice@example.com", "bob@example.com", "no room", size)
		err := submit(h.addr("submission"), h.tls, "alice@example.com", users["alice@example.com"], "alice@example.com", []string{"bob@example.com", "dave@example.com"}, m.Raw)
		if c := smtpCode(err); c < 400 || c > 499 {
			t.Errorf("%d-byte message on a full disk: %v, want a 4xx reply", size, err)
		} else {
			t.Logf("full disk, %d bytes: %v", size, err)
		}
	}
	// Mail for another domain goes to the relay queue in the data dir.
	m := newMessage("alice@example.com", "friend@elsewhere.example.org", "no room either", 50_000)
	err := submit(h.addr("submission"), h.tls, "alice@example.com", users["alice@example.com"], "alice@example.com", []string{"friend@elsewhere.example.org"}, m.Raw)
	if c := smtpCode(err); c < 400 || c > 499 {
		t.Errorf("relay message on a full disk: %v, want a 4xx reply", err)
	}
	h.onlyThese(t, "bob@example.com", first)
	h.onlyThese(t, "dave@example.com", first)
	h.noTempLeftovers(t)

	// Space returns: delivery works again without a restart.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	second := h.deliverOK(t, "after space returned")
	h.onlyThese(t, "bob@example.com", first, second)
	h.onlyThese(t, "dave@example.com", first, second)
}

// fillDisk writes path until the file system is full: big chunks, then
// small ones to use up the last partial page.
func fillDisk(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, size := range []int{64 << 10, 512, 1} {
		chunk := make([]byte, size)
		for i := 0; ; i++ {
			if i > 100_000 {
				t.Fatal("the disk never filled")
			}
			if _, err := f.Write(chunk); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatalf("filling the disk: %v", err)
				}
				break
			}
		}
	}
}

// failFS is a mailstore.FS that fails on demand: ENOSPC partway through a
// write, EACCES on create, or EACCES on the delivery hard link.
type failFS struct {
	mode atomic.Int32 // one of the fail* constants
}

const (
	failNone = iota
	failNoSpace
	failCreate
	failLink
)

func (f *failFS) Create(path string) (mailstore.File, error) {
	if f.mode.Load() == failCreate {
		return nil, &os.PathError{Op: "open", Path: path, Err: syscall.EACCES}
	}
	file, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	return &failFile{File: file, fs: f}, nil
}

func (f *failFS) Link(oldname, newname string) error {
	if f.mode.Load() == failLink {
		return &os.LinkError{Op: "link", Old: oldname, New: newname, Err: syscall.EACCES}
	}
	return os.Link(oldname, newname)
}

// failFile lets 1000 bytes through, then reports ENOSPC (a disk that
// fills during the transfer), as write(2) does.
type failFile struct {
	*os.File
	fs      *failFS
	written int
}

func (f *failFile) Write(p []byte) (int, error) {
	if f.fs.mode.Load() == failNoSpace {
		room := max(0, 1000-f.written)
		if len(p) > room {
			n, _ := f.File.Write(p[:room])
			f.written += n
			return n, &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
		}
	}
	n, err := f.File.Write(p)
	f.written += n
	return n, err
}

func (f *failFile) Sync() error {
	if f.fs.mode.Load() == failNoSpace {
		return &os.PathError{Op: "fsync", Path: f.Name(), Err: syscall.ENOSPC}
	}
	return f.File.Sync()
}

// Disk full and permission denied, injected through Options.StoreFS (root
// ignores file modes, so EACCES cannot be made with chmod here): SMTP
// answers 4xx, IMAP APPEND answers NO, nothing half-written is visible,
// the server keeps running and recovers when the fault goes away.
func TestDiskFullInjected(t *testing.T) {
	for _, tc := range []struct {
		name string
		mode int32
	}{
		{"ENOSPC during write", failNoSpace},
		{"EACCES on create", failCreate},
		{"EACCES on link into new/", failLink},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := &failFS{}
			h := startSuite(t, configWith(officeAliases, "alice@example.com", "bob@example.com", "dave@example.com"), mailsuite.Options{StoreFS: fs})
			first := h.deliverOK(t, "before the fault")
			h.onlyThese(t, "bob@example.com", first)
			h.onlyThese(t, "dave@example.com", first)
			fs.mode.Store(tc.mode)

			m := newMessage("alice@example.com", "team@example.com", "fault", 20_000)
			err := submit(h.addr("submission"), h.tls, "alice@example.com", users["alice@example.com"], "alice@example.com", []string{"team@example.com"}, m.Raw)
			if c := smtpCode(err); c < 400 || c > 499 {
				t.Errorf("SMTP during the fault: %v, want a 4xx reply", err)
			} else {
				t.Logf("SMTP during the fault: %v", err)
			}
			if strings.Contains(fmt.Sprint(err), "no space") || strings.Contains(fmt.Sprint(err), "permission") || strings.Contains(fmt.Sprint(err), "/") {
				t.Errorf("the reply leaks an internal error: %v", err)
			}
			if tc.mode != failLink {
				c, err := dialIMAPS(h.addr("imaps"), h.tls, "bob@example.com", users["bob@example.com"], nil)
				if err != nil {
					t.Fatal(err)
				}
				ap := newMessage("bob@example.com", "bob@example.com", "draft", 5000)
				cmd := c.Append("Drafts", int64(len(ap.Raw)), &imap.AppendOptions{Flags: []imap.Flag{imap.FlagDraft}})
				cmd.Write(ap.Raw)
				cmd.Close()
				if _, err := cmd.Wait(); err == nil {
					t.Error("IMAP APPEND succeeded during the fault")
				}
				if err := c.Noop().Wait(); err != nil {
					t.Errorf("IMAP session unusable after a failed APPEND: %v", err)
				}
				c.Close()
			}
			// bob and dave are both on the list: all or nothing.
			h.onlyThese(t, "bob@example.com", first)
			h.onlyThese(t, "dave@example.com", first)
			h.noTempLeftovers(t)

			fs.mode.Store(failNone)
			second := h.deliverOK(t, "after the fault")
			h.onlyThese(t, "bob@example.com", first, second)
			h.onlyThese(t, "dave@example.com", first, second)
		})
	}
}

// deliverOK submits a message from alice to the list (bob and dave) and
// requires 250 within a few seconds.
func (h *harness) deliverOK(t *testing.T, when string) string {
	t.Helper()
	to := "team@example.com"
	m := newMessage("alice@example.com", to, when, 3000)
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := submit(h.addr("submission"), h.tls, "alice@example.com", users["alice@example.com"], "alice@example.com", []string{to}, m.Raw)
		if err == nil {
			return m.ID
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivery %s: %v", when, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// onlyThese: user's INBOX over IMAP holds exactly ids, whole, and the
// maildir on disk passes the independent check with nothing else in it.
func (h *harness) onlyThese(t *testing.T, user string, ids ...string) {
	t.Helper()
	c, err := dialIMAPS(h.addr("imaps"), h.tls, user, users[user], nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, msgs, err := fetchAll(c, "INBOX", true)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range msgs {
		id, err := checkMessage(m.Body)
		if err != nil {
			t.Errorf("%s: IMAP shows a damaged message: %v", user, err)
		}
		got = append(got, id)
	}
	wantIDs(t, user+" INBOX", got, ids...)
	fc, err := checkFolder(h.maildir(user))
	if err != nil {
		t.Errorf("store check: %v", err)
	} else if len(fc.Messages) != len(ids) {
		t.Errorf("%s: %d messages on disk, want %d", user, len(fc.Messages), len(ids))
	}
}

// noTempLeftovers: a failed delivery removes its temp file.
func (h *harness) noTempLeftovers(t *testing.T) {
	t.Helper()
	tmp := filepath.Join(h.dataDir, "mail", ".mailsuite-tmp")
	ents, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatalf("delivery temp dir: %v", err)
	}
	for _, e := range ents {
		t.Errorf("failed delivery left %s in %s", e.Name(), tmp)
	}
}
