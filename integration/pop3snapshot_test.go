package integration

import (
	"fmt"
	"testing"

	"github.com/emersion/go-imap/v2"
)

// A phone's POP3 session works on the maildrop as it was at login (RFC
// 1939 §8). While it is open, the desktop moves one of its messages to
// Trash and new mail arrives; the phone then deletes everything it listed
// and says QUIT. The moved copy in Trash and the new mail survive, and
// POP3 and IMAP agree on the result.
func TestPOP3SnapshotAgainstIMAPChanges(t *testing.T) {
	h := officeSuite(t)
	ids := h.aliceMailsBob(t, 3, "before the phone logs in")
	phone, err := dialPOP3S(h.addr("pop3s"), h.tls, "bob@example.com", users["bob@example.com"])
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	list, err := phone.uidl()
	if err != nil || len(list) != 3 {
		t.Fatalf("UIDL: %v %v", list, err)
	}

	desk, err := dialIMAPS(h.addr("imaps"), h.tls, "bob@example.com", users["bob@example.com"], nil)
	if err != nil {
		t.Fatal(err)
	}
	defer desk.Close()
	if _, _, err := fetchAll(desk, "INBOX", false); err != nil {
		t.Fatal(err)
	}
	if _, err := desk.Move(imap.UIDSetNum(2), "Trash").Wait(); err != nil {
		t.Fatal(err)
	}
	later := h.aliceMailsBob(t, 1, "while the phone is connected")

	if l2, err := phone.uidl(); err != nil || len(l2) != 3 {
		t.Errorf("the phone's listing changed during its session: %v %v", l2, err)
	}
	for n := range list {
		if _, err := phone.cmd(fmt.Sprintf("DELE %d", n)); err != nil {
			t.Errorf("DELE %d: %v", n, err)
		}
	}
	if err := phone.quit(); err != nil {
		// RFC 2449 lets a server report that some deletions failed; the
		// message moved away is no longer in INBOX to delete.
		t.Logf("QUIT: %v", err)
	}
	checkInbox(t, h, "bob@example.com", later...)
	_, trash, err := fetchAll(desk, "Trash", true)
	if err != nil {
		t.Fatal(err)
	}
	if len(trash) != 1 {
		t.Fatalf("Trash holds %d messages, want the 1 moved there", len(trash))
	}
	if id, err := checkMessage(trash[0].Body); err != nil || id != ids[1] {
		t.Errorf("Trash holds %q (%v), want %s", id, err, ids[1])
	}
}
