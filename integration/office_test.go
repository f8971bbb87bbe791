package integration

import (
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailsuite/mailsuite"
)

// A small office day: alice mails bob and a list over submission; bob
// reads over IMAP (IDLE) while his phone reads over POP3 leaving mail on
// the server; bob files, flags, trashes and expunges; after every step a
// fresh POP3 session and IMAP agree on what INBOX holds.
func TestSmallOfficeDay(t *testing.T) {
	h := startSuite(t, configWith(officeAliases, "alice@example.com", "bob@example.com", "dave@example.com"), mailsuite.Options{})
	bob := newOfficeUser(t, h, "bob@example.com")
	defer bob.imap.Close()

	// Bob's desktop sits in IDLE on INBOX.
	idle, err := bob.imap.Idle()
	if err != nil {
		t.Fatalf("IDLE: %v", err)
	}
	m1 := newMessage("alice@example.com", "bob@example.com", "Lunch?", 2000)
	m2 := newMessage("alice@example.com", "team@example.com", "Team meeting at 3", 3000)
	alice := users["alice@example.com"]
	if err := submit(h.addr("submission"), h.tls, "alice@example.com", alice, "alice@example.com", []string{"bob@example.com"}, m1.Raw); err != nil {
		t.Fatalf("submit to bob: %v", err)
	}
	if err := submit(h.addr("submission"), h.tls, "alice@example.com", alice, "alice@example.com", []string{"team@example.com"}, m2.Raw); err != nil {
		t.Fatalf("submit to the list: %v", err)
	}
	if err := bob.watch.waitExists(2, 5*time.Second); err != nil {
		t.Fatalf("bob's IDLE was not told of the new mail: %v", err)
	}
	if err := idle.Close(); err != nil {
		t.Fatalf("DONE: %v", err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatalf("IDLE ended with %v", err)
	}

	// The phone downloads both, leaving them on the server.
	got := bob.phoneSync()
	wantIDs(t, "phone's first download", got, m1.ID, m2.ID)
	bob.agree("after delivery", m1.ID, m2.ID)
	// The list reached dave too, whole.
	dave, err := dialPOP3S(h.addr("pop3s"), h.tls, "dave@example.com", users["dave@example.com"])
	if err != nil {
		t.Fatal(err)
	}
	if b, err := dave.retr(1); err != nil {
		t.Fatalf("dave RETR: %v", err)
	} else if id, err := checkMessage(b); err != nil || id != m2.ID {
		t.Fatalf("dave got %q, %v; want the list mail %s", id, err, m2.ID)
	}
	dave.quit()

	// A third message; the phone fetches only what is new.
	m3 := newMessage("alice@example.com", "bob@example.com", "Slides", 1000)
	if err := submit(h.addr("submission"), h.tls, "alice@example.com", alice, "alice@example.com", []string{"bob@example.com"}, m3.Raw); err != nil {
		t.Fatal(err)
	}
	wantIDs(t, "phone's second download", bob.phoneSync(), m3.ID)
	bob.agree("after the third message", m1.ID, m2.ID, m3.ID)

	// Bob files m1 into a folder of his own.
	if err := bob.imap.Create("Projects", nil).Wait(); err != nil {
		t.Fatalf("CREATE: %v", err)
	}
	bob.move(m1.ID, "Projects")
	bob.agree("after filing m1", m2.ID, m3.ID)
	bob.folderHas("Projects", m1.ID)

	// Flagging renames the maildir file but must not change the UIDL.
	before := bob.uidlOf()
	uid := bob.uidOf(m2.ID)
	if _, err := bob.imap.Store(imap.UIDSetNum(uid), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagFlagged}}, nil).Collect(); err != nil {
		t.Fatalf("STORE +FLAGS: %v", err)
	}
	bob.agree("after flagging m2", m2.ID, m3.ID)
	if after := bob.uidlOf(); after[m2.ID] != before[m2.ID] {
		t.Errorf("flagging m2 changed its UIDL from %s to %s", before[m2.ID], after[m2.ID])
	}
	if len(bob.phoneSync()) != 0 {
		t.Error("the phone downloaded a message again after a flag change")
	}

	// Move to Trash, then empty the Trash.
	bob.move(m3.ID, "Trash")
	bob.agree("after trashing m3", m2.ID)
	bob.folderHas("Trash", m3.ID)
	if _, err := bob.imap.Select("Trash", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.imap.Store(allSeq(), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Collect(); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.imap.Expunge().Collect(); err != nil {
		t.Fatalf("EXPUNGE Trash: %v", err)
	}
	bob.folderHas("Trash")
	bob.agree("after emptying Trash", m2.ID)

	// Expunge in INBOX itself.
	m4 := newMessage("alice@example.com", "bob@example.com", "Ignore this", 500)
	if err := submit(h.addr("submission"), h.tls, "alice@example.com", alice, "alice@example.com", []string{"bob@example.com"}, m4.Raw); err != nil {
		t.Fatal(err)
	}
	bob.agree("after m4", m2.ID, m4.ID)
	if _, err := bob.imap.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.imap.Store(imap.UIDSetNum(bob.uidOf(m4.ID)), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Collect(); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.imap.Expunge().Collect(); err != nil {
		t.Fatal(err)
	}
	bob.agree("after expunging m4", m2.ID)

	// A new message read on the phone: the desktop in IDLE sees it arrive,
	// then sees the \Seen flag the phone's RETR set.
	if _, err := bob.imap.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	bob.watch.drain()
	idle, err = bob.imap.Idle()
	if err != nil {
		t.Fatal(err)
	}
	m5 := newMessage("alice@example.com", "bob@example.com", "Read me on the train", 800)
	if err := submit(h.addr("submission"), h.tls, "alice@example.com", alice, "alice@example.com", []string{"bob@example.com"}, m5.Raw); err != nil {
		t.Fatal(err)
	}
	if err := bob.watch.waitExists(2, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	wantIDs(t, "phone's download of m5", bob.phoneSync(), m5.ID)
	if err := bob.watch.waitFlag(imap.FlagSeen, 5*time.Second); err != nil {
		t.Errorf("the IDLE session was not told the phone read m5: %v", err)
	}
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatal(err)
	}
	bob.agree("after the phone read m5", m2.ID, m5.ID)

	// The phone deletes m2 (DELE, then QUIT): the desktop in IDLE is told
	// at once with an EXPUNGE.
	if _, err := bob.imap.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	bob.watch.drain() // forget the EXPUNGEs of bob's own MOVEs
	idle, err = bob.imap.Idle()
	if err != nil {
		t.Fatal(err)
	}
	phone, err := dialPOP3S(h.addr("pop3s"), h.tls, "bob@example.com", bob.pass)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := phone.cmd("DELE 1"); err != nil {
		t.Fatal(err)
	}
	if err := phone.quit(); err != nil {
		t.Fatalf("QUIT after DELE: %v", err)
	}
	select {
	case <-bob.watch.expunge:
	case <-time.After(5 * time.Second):
		t.Fatal("the IDLE session was not told of the phone's deletion")
	}
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatal(err)
	}
	bob.agree("after the phone deleted m2", m5.ID)
}
