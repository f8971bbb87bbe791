package integration

import (
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// What the crash test remembers between restarts, and how it checks.

var crashUsers = []string{"alice@example.com", "bob@example.com", "dave@example.com"}

// crashFolders: bob files mail into Archive and saves drafts during the
// load.
func crashFolders(user string) []string {
	if user == "bob@example.com" {
		return []string{"INBOX", "Archive", "Drafts"}
	}
	return []string{"INBOX"}
}

type sentMessage struct {
	owners []string
	acked  bool
}

type crashState struct {
	t       *testing.T
	dataDir string
	ini     string
	mu      sync.Mutex
	sent    map[string]*sentMessage
	uidv    map[string]uint32            // "user folder" → UIDVALIDITY
	uids    map[string]map[string]uint32 // "user folder" → Message-ID → UID
	deleted map[string]bool              // "user Message-ID" → POP3 DELE then QUIT sent (false) / answered +OK (true)
	errs    errList
	filed   atomic.Int64 // IMAP MOVE/STORE commands that succeeded
}

func newCrashState(t *testing.T, ini, dataDir string) *crashState {
	return &crashState{t: t, ini: ini, dataDir: dataDir, sent: map[string]*sentMessage{},
		uidv: map[string]uint32{}, uids: map[string]map[string]uint32{}, deleted: map[string]bool{}}
}

func (cs *crashState) record(id string, owners []string, acked bool) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.sent[id] = &sentMessage{owners: owners, acked: acked}
}

func (cs *crashState) acked() int {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	n := 0
	for _, m := range cs.sent {
		if m.acked {
			n++
		}
	}
	return n
}

// openAfterRestart: every folder opens within seconds of a restart, even
// when the killed process left a dotlock behind. If not, that is reported
// (TestRestartAfterCrashWithUIDListLockHeld shows it alone) and the dead
// locks are removed so that the other checks can still run.
func (cs *crashState) openAfterRestart(c *child, tc *tls.Config, round int) {
	t := cs.t
	t.Helper()
	err := within(10*time.Second, func() error {
		for _, u := range crashUsers {
			ic, err := dialIMAPS(c.addrs["imaps"], tc, u, users[u], nil)
			if err != nil {
				return err
			}
			for _, folder := range crashFolders(u) {
				if _, _, err := fetchAll(ic, folder, false); err != nil {
					ic.Close()
					return err
				}
			}
			ic.Close()
		}
		return nil
	})
	if err != nil {
		locks := staleLocks(filepath.Join(cs.dataDir, "mail"))
		t.Errorf("round %d: folders cannot be opened after the restart (%v); locks left by the killed process: %v", round, err, locks)
		for _, l := range locks {
			os.Remove(l)
		}
	}
}

// verify reads every folder over IMAP and INBOX over POP3 after a
// (re)start.
func (cs *crashState) verify(c *child, tc *tls.Config, round int) {
	t := cs.t
	t.Helper()
	for _, u := range crashUsers {
		ic, err := dialIMAPS(c.addrs["imaps"], tc, u, users[u], nil)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		total := map[string][]string{} // Message-ID → folders
		for _, folder := range crashFolders(u) {
			key := u + " " + folder
			uidv, msgs, err := fetchAll(ic, folder, true)
			if err != nil {
				t.Fatalf("round %d: %s: %v", round, key, err)
			}
			if old, ok := cs.uidv[key]; ok && old != uidv {
				t.Errorf("round %d: %s UIDVALIDITY changed from %d to %d", round, key, old, uidv)
			}
			cs.uidv[key] = uidv
			now := map[string]uint32{}
			for _, m := range msgs {
				id, err := checkMessage(m.Body)
				if err != nil {
					t.Errorf("round %d: %s: IMAP shows a damaged message (UID %d): %v", round, key, m.UID, err)
					continue
				}
				if _, dup := now[id]; dup {
					t.Errorf("round %d: %s holds %s twice", round, key, id)
				}
				now[id] = uint32(m.UID)
				total[id] = append(total[id], folder)
				if old, ok := cs.uids[key][id]; ok && old != uint32(m.UID) {
					t.Errorf("round %d: %s: %s changed UID from %d to %d", round, key, id, old, m.UID)
				}
			}
			cs.uids[key] = now
		}
		ic.Logout().Wait()
		ic.Close()
		cs.mu.Lock()
		for id, folders := range total {
			if s := cs.sent[id]; s == nil || !contains(s.owners, u) {
				t.Errorf("round %d: %s holds %s, never sent to them", round, u, id)
			} else if len(folders) > 1 {
				// A MOVE is copy, then expunge (as in Dovecot's maildir):
				// a crash between the two leaves a copy in each folder.
				t.Logf("round %d: %s: %s is in %v (a MOVE cut by the crash)", round, u, id, folders)
			}
		}
		for id, s := range cs.sent {
			deleted, deleting := cs.deleted[u+" "+id]
			switch {
			case deleted && len(total[id]) > 0:
				t.Errorf("round %d: %s: %s is back after the restart, deleted by a POP3 session that got +OK at QUIT", round, u, id)
			case s.acked && contains(s.owners, u) && !deleting && len(total[id]) == 0:
				t.Errorf("round %d: %s: acknowledged message %s is lost", round, u, id)
			}
		}
		cs.mu.Unlock()
		cs.verifyPOP3(c, tc, round, u)
	}
}

// verifyPOP3: POP3 sees INBOX as IMAP does, whole, with UIDLs made of the
// same UIDs.
func (cs *crashState) verifyPOP3(c *child, tc *tls.Config, round int, u string) {
	t := cs.t
	t.Helper()
	key := u + " INBOX"
	p, err := dialPOP3S(c.addrs["pop3s"], tc, u, users[u])
	if err != nil {
		t.Fatalf("round %d: %v", round, err)
	}
	defer p.quit()
	list, err := p.uidl()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != len(cs.uids[key]) {
		t.Errorf("round %d: %s: POP3 lists %d messages, IMAP %d", round, u, len(list), len(cs.uids[key]))
	}
	for n, uidl := range list {
		raw, err := p.retr(n)
		if err != nil {
			t.Fatalf("round %d: %s RETR %d: %v", round, u, n, err)
		}
		id, err := checkMessage(raw)
		if err != nil {
			t.Errorf("round %d: %s: POP3 shows a damaged message: %v", round, u, err)
			continue
		}
		if want := fmt.Sprintf("%08x%08x", cs.uids[key][id], cs.uidv[key]); uidl != want {
			t.Errorf("round %d: %s: %s has UIDL %s over POP3, IMAP UID says %s", round, u, id, uidl, want)
		}
	}
}

// checkTree runs the independent maildir check and Dovecot over the tree
// the crashes left, and compares both with what IMAP showed last.
func (cs *crashState) checkTree() {
	t := cs.t
	t.Helper()
	for _, u := range crashUsers {
		local, domain := splitAddr(u)
		for _, folder := range crashFolders(u) {
			key := u + " " + folder
			dir := filepath.Join(cs.dataDir, "mail", domain, local)
			if folder != "INBOX" {
				dir = filepath.Join(dir, "."+folder)
			}
			fc, err := checkFolder(dir)
			if err != nil {
				t.Errorf("store check: %v", err)
				continue
			}
			if fc.UIDValidity != cs.uidv[key] {
				t.Errorf("%s: dovecot-uidlist UIDVALIDITY %d, IMAP said %d", key, fc.UIDValidity, cs.uidv[key])
			}
			for _, m := range fc.Messages {
				if cs.uids[key][m.ID] != m.UID {
					t.Errorf("%s: %s has UID %d on disk, %d over IMAP", key, m.ID, m.UID, cs.uids[key][m.ID])
				}
			}
			if len(fc.Messages) != len(cs.uids[key]) {
				t.Errorf("%s: %d messages on disk, %d over IMAP", key, len(fc.Messages), len(cs.uids[key]))
			}
		}
	}
	// The server has stopped: the admin's checker looks at the tree.
	checkStoreCLI(t, "after the crashes", cs.ini)
	if !haveDovecot(t) {
		t.Log("Dovecot not installed: skipping its cross-check of the tree")
		return
	}
	conf, tree := dovecotCopy(t, filepath.Join(cs.dataDir, "mail"))
	for _, u := range crashUsers {
		for _, folder := range crashFolders(u) {
			key := u + " " + folder
			uidv, view := dovecotView(t, conf, tree, u, folder)
			if uidv != cs.uidv[key] {
				t.Errorf("%s: Dovecot sees UIDVALIDITY %d, mailsuite %d", key, uidv, cs.uidv[key])
			}
			if len(view) != len(cs.uids[key]) {
				t.Errorf("%s: Dovecot sees %d messages, mailsuite %d", key, len(view), len(cs.uids[key]))
			}
			for id, uid := range cs.uids[key] {
				if !strings.HasPrefix(view[id], fmt.Sprintf("UID %d FLAGS", uid)) {
					t.Errorf("%s: %s is UID %d in mailsuite, %q in Dovecot", key, id, uid, view[id])
				}
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func splitAddr(a string) (local, domain string) {
	for i := len(a) - 1; i >= 0; i-- {
		if a[i] == '@' {
			return a[:i], a[i+1:]
		}
	}
	return a, ""
}
