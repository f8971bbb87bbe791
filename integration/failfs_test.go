package integration

import (
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/emersion/go-imap/v2"

	"github.com/mailsuite/mailsuite"
	"github.com/mailsuite/mailsuite/mailstore"
)

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
		name  string
		mode  int32
		reply string // code and enhanced code
	}{
		{"ENOSPC during write", failNoSpace, "452 4.3.1"},
		{"EACCES on create", failCreate, "451 4.3.0"},
		{"EACCES on link into new/", failLink, "451 4.3.0"},
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
			if got := fmt.Sprintf("%d %s", smtpCode(err), smtpEnhanced(err)); got != tc.reply {
				t.Errorf("SMTP during the fault: %v, want %s", err, tc.reply)
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
			h.storeCheck(t, "after the failed deliveries")

			fs.mode.Store(failNone)
			second := h.deliverOK(t, "after the fault")
			h.onlyThese(t, "bob@example.com", first, second)
			h.onlyThese(t, "dave@example.com", first, second)
		})
	}
}
