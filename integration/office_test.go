package integration

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

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

	// The phone deletes m2 (DELE, then QUIT): the desktop in IDLE is told
	// at once with an EXPUNGE.
	if _, err := bob.imap.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	for len(bob.watch.expunge) > 0 { // forget the EXPUNGEs of bob's own MOVEs
		<-bob.watch.expunge
	}
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
	bob.agree("after the phone deleted m2")
}

// officeUser is bob: one IMAP session and a phone that remembers UIDLs.
type officeUser struct {
	t     *testing.T
	h     *harness
	user  string
	pass  string
	imap  *imapclient.Client
	watch *idleWatcher
	seen  map[string]bool // UIDLs the phone has downloaded
}

func newOfficeUser(t *testing.T, h *harness, user string) *officeUser {
	w, handler := newIdleWatcher()
	c, err := dialIMAPS(h.addr("imaps"), h.tls, user, users[user], handler)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	return &officeUser{t: t, h: h, user: user, pass: users[user], imap: c, watch: w, seen: map[string]bool{}}
}

// phoneSync is a "leave on server" POP3 client: a fresh session, RETR of
// every UIDL not seen before, QUIT without DELE. It returns the
// Message-IDs it downloaded, each checked for integrity.
func (u *officeUser) phoneSync() []string {
	u.t.Helper()
	p, err := dialPOP3S(u.h.addr("pop3s"), u.h.tls, u.user, u.pass)
	if err != nil {
		u.t.Fatalf("phone login: %v", err)
	}
	defer p.Close()
	list, err := p.uidl()
	if err != nil {
		u.t.Fatal(err)
	}
	var ids []string
	for n, uidl := range list {
		if u.seen[uidl] {
			continue
		}
		raw, err := p.retr(n)
		if err != nil {
			u.t.Fatalf("phone RETR %d: %v", n, err)
		}
		id, err := checkMessage(raw)
		if err != nil {
			u.t.Fatalf("phone RETR %d: %v", n, err)
		}
		u.seen[uidl] = true
		ids = append(ids, id)
	}
	if err := p.quit(); err != nil {
		u.t.Fatalf("phone QUIT: %v", err)
	}
	return ids
}

// agree checks that a fresh POP3 session's UIDLs are exactly the IMAP
// INBOX UIDs in Dovecot's format (%08Xu%08Xv, which Dovecot prints in lower
// case) and that INBOX holds exactly the messages want.
func (u *officeUser) agree(step string, want ...string) {
	u.t.Helper()
	uidv, msgs, err := fetchAll(u.imap, "INBOX", true)
	if err != nil {
		u.t.Fatalf("%s: %v", step, err)
	}
	imapUIDLs := map[string]bool{}
	var ids []string
	for _, m := range msgs {
		imapUIDLs[fmt.Sprintf("%08x%08x", uint32(m.UID), uidv)] = true
		id, err := checkMessage(m.Body)
		if err != nil {
			u.t.Fatalf("%s: IMAP UID %d: %v", step, m.UID, err)
		}
		ids = append(ids, id)
	}
	wantIDs(u.t, step+": IMAP INBOX", ids, want...)
	popUIDLs, err := uidlSet(u.h.addr("pop3s"), u.h.tls, u.user, u.pass)
	if err != nil {
		u.t.Fatalf("%s: POP3: %v", step, err)
	}
	if !sameSet(imapUIDLs, popUIDLs) {
		u.t.Fatalf("%s: POP3 UIDLs %v != IMAP INBOX UIDs as UIDLs %v", step, keys(popUIDLs), keys(imapUIDLs))
	}
}

// uidOf finds a message's UID in INBOX by Message-ID.
func (u *officeUser) uidOf(id string) imap.UID {
	u.t.Helper()
	_, msgs, err := fetchAll(u.imap, "INBOX", true)
	if err != nil {
		u.t.Fatal(err)
	}
	for _, m := range msgs {
		if got, _ := checkMessage(m.Body); got == id {
			return m.UID
		}
	}
	u.t.Fatalf("%s is not in INBOX", id)
	return 0
}

// uidlOf maps Message-ID → UIDL from a fresh POP3 session.
func (u *officeUser) uidlOf() map[string]string {
	u.t.Helper()
	p, err := dialPOP3S(u.h.addr("pop3s"), u.h.tls, u.user, u.pass)
	if err != nil {
		u.t.Fatal(err)
	}
	defer p.Close()
	list, err := p.uidl()
	if err != nil {
		u.t.Fatal(err)
	}
	out := map[string]string{}
	for n, uidl := range list {
		raw, err := p.retr(n)
		if err != nil {
			u.t.Fatal(err)
		}
		id, _ := checkMessage(raw)
		out[id] = uidl
	}
	p.quit()
	return out
}

func (u *officeUser) move(id, folder string) {
	u.t.Helper()
	uid := u.uidOf(id)
	if _, err := u.imap.Move(imap.UIDSetNum(uid), folder).Wait(); err != nil {
		u.t.Fatalf("UID MOVE %d %s: %v", uid, folder, err)
	}
}

func (u *officeUser) folderHas(folder string, want ...string) {
	u.t.Helper()
	_, msgs, err := fetchAll(u.imap, folder, true)
	if err != nil {
		u.t.Fatal(err)
	}
	var ids []string
	for _, m := range msgs {
		id, err := checkMessage(m.Body)
		if err != nil {
			u.t.Fatalf("%s UID %d: %v", folder, m.UID, err)
		}
		ids = append(ids, id)
	}
	wantIDs(u.t, folder, ids, want...)
	if _, err := u.imap.Select("INBOX", nil).Wait(); err != nil {
		u.t.Fatal(err)
	}
}

func wantIDs(t testing.TB, what string, got []string, want ...string) {
	t.Helper()
	g := append([]string(nil), got...)
	w := append([]string(nil), want...)
	sort.Strings(g)
	sort.Strings(w)
	if strings.Join(g, ",") != strings.Join(w, ",") {
		t.Fatalf("%s: got messages %v, want %v", what, g, w)
	}
}

func sameSet(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
