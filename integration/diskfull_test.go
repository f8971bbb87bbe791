package integration

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
	extra := h.deliverOK(t, "to be deleted while the disk is full")
	// Both have logged in (default folders made, UIDs assigned) before the
	// disk fills: reading what is there must keep working while it is full.
	h.onlyThese(t, "bob@example.com", first, extra)
	h.onlyThese(t, "dave@example.com", first, extra)

	// Fill the file system to the last byte.
	filler := filepath.Join(data, "filler")
	fillDisk(t, filler)

	for _, size := range []int{200, 100_000} {
		m := newMessage("alice@example.com", "bob@example.com", "no room", size)
		err := submit(h.addr("submission"), h.tls, "alice@example.com", users["alice@example.com"], "alice@example.com", []string{"bob@example.com", "dave@example.com"}, m.Raw)
		if smtpCode(err) != 452 || smtpEnhanced(err) != "4.3.1" {
			t.Errorf("%d-byte message on a full disk: %v, want 452 4.3.1", size, err)
		} else {
			t.Logf("full disk, %d bytes: %v", size, err)
		}
	}
	// Mail for another domain goes to the relay queue in the data dir.
	m := newMessage("alice@example.com", "friend@elsewhere.example.org", "no room either", 50_000)
	err := submit(h.addr("submission"), h.tls, "alice@example.com", users["alice@example.com"], "alice@example.com", []string{"friend@elsewhere.example.org"}, m.Raw)
	if smtpCode(err) != 452 || smtpEnhanced(err) != "4.3.1" {
		t.Errorf("relay message on a full disk: %v, want 452 4.3.1", err)
	}
	h.onlyThese(t, "bob@example.com", first, extra)
	h.onlyThese(t, "dave@example.com", first, extra)
	h.noTempLeftovers(t)

	// Deleting mail is how users make room: it must work on a full disk,
	// over IMAP (EXPUNGE) and POP3 (DELE, QUIT).
	h.deleteOverIMAP(t, "bob@example.com", extra)
	h.deleteOverPOP3(t, "dave@example.com", extra)
	h.onlyThese(t, "bob@example.com", first)
	h.onlyThese(t, "dave@example.com", first)

	// Space returns: delivery works again without a restart.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	second := h.deliverOK(t, "after space returned")
	h.onlyThese(t, "bob@example.com", first, second)
	h.onlyThese(t, "dave@example.com", first, second)
	h.storeCheck(t, "after the disk was full")
}

// deleteOverIMAP expunges the message id from user's INBOX.
func (h *harness) deleteOverIMAP(t *testing.T, user, id string) {
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
	for _, m := range msgs {
		if got, _ := checkMessage(m.Body); got != id {
			continue
		}
		if _, err := c.Store(imap.UIDSetNum(m.UID), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Collect(); err != nil {
			t.Errorf("%s: STORE \\Deleted: %v", user, err)
		}
		if _, err := c.Expunge().Collect(); err != nil {
			t.Errorf("%s: EXPUNGE: %v", user, err)
		}
		return
	}
	t.Fatalf("%s: %s not in INBOX", user, id)
}

// deleteOverPOP3 deletes the message id from user's maildrop (DELE, QUIT).
func (h *harness) deleteOverPOP3(t *testing.T, user, id string) {
	t.Helper()
	p, err := dialPOP3S(h.addr("pop3s"), h.tls, user, users[user])
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	list, err := p.uidl()
	if err != nil {
		t.Fatal(err)
	}
	for n := range list {
		raw, err := p.retr(n)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := checkMessage(raw); got == id {
			if _, err := p.cmd(fmt.Sprintf("DELE %d", n)); err != nil {
				t.Errorf("%s: %v", user, err)
			}
		}
	}
	if err := p.quit(); err != nil {
		t.Errorf("%s: QUIT after DELE: %v", user, err)
	}
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

// storeCheck runs the store's own checker over the running suite's tree.
func (h *harness) storeCheck(t *testing.T, what string) {
	t.Helper()
	r, err := h.s.Store().Check(mailstore.CheckOptions{})
	requireStoreCheck(t, what, r, err)
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
