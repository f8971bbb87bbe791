package integration

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// officeUser is bob: a desktop IMAP session (port 143, STARTTLS) and a
// phone that remembers UIDLs (POP3 over implicit TLS).
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
	c, err := dialIMAPStartTLS(h.addr("imap"), h.tls, user, users[user], handler)
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
