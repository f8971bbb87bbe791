package mailstore

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An old Dovecot 1.x tree has a version 1 dovecot-uidlist. A new delivery
// must not append version-3 lines to it (the next reader would take the
// extension fields for part of the file name and renumber the message):
// the list is rewritten as version 3, and every UID survives a reopen.
func TestVersion1UIDListUpgradedOnFirstChange(t *testing.T) {
	root := t.TempDir()
	s := openStore(t, root)
	u := mustUser(t, s, "old@example.com")
	inbox := mustFolder(t, u, Inbox)
	dir := filepath.Join(root, "example.com", "old")
	const key = "1200000000.M1P1.oldhost"
	if err := os.WriteFile(filepath.Join(dir, "cur", key+":2,S"), []byte("Subject: old\r\n\r\nhi\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "dovecot-uidlist"), []byte("1 1200000000 8\n7 "+key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	msgs, err := inbox.Sync()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || msgs[0].UID != 7 || inbox.UIDValidity() != 1200000000 {
		t.Fatalf("v1 list read as %+v (uidvalidity %d)", msgs, inbox.UIDValidity())
	}

	deliver(t, s, "Subject: new\r\n\r\nnew\r\n", "old@example.com")
	if msgs, err = inbox.Sync(); err != nil || len(msgs) != 2 || msgs[1].UID != 8 {
		t.Fatalf("after a delivery: %+v, %v", msgs, err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "dovecot-uidlist"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), "3 ") {
		t.Fatalf("the list was not rewritten as version 3:\n%s", data)
	}

	// A fresh process sees the same UIDs.
	s2 := openStore(t, root)
	again, err := mustFolder(t, mustUser(t, s2, "old@example.com"), Inbox).Sync()
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != 2 || again[0].UID != 7 || again[1].UID != 8 || again[0].Key != key {
		t.Fatalf("after reopening: %+v", again)
	}
}
