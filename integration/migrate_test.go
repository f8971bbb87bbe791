package integration

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailsuite/mailsuite"
	"github.com/mailsuite/mailsuite/mailstore"
)

// An office moving from Dovecot: Dovecot writes the tree (messages with
// flags and a keyword, a folder of bob's own, an expunged message leaving
// a gap in the UIDs), then mailsuite serves it. Every message keeps its
// UID, UIDVALIDITY and flags, so IMAP clients and POP3 phones (UIDL) do
// not download everything again, and new mail gets a UID above any
// Dovecot ever gave.
func TestMailsuiteServesDovecotsTree(t *testing.T) {
	if !haveDovecot(t) {
		t.Skip("Dovecot's imap/pop3 not installed: skipping (in CI, with CI=true, this fails)")
	}
	dir, err := os.MkdirTemp("", "mailsuite-migrate-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil { // Dovecot runs as nobody
		t.Fatal(err)
	}
	root := filepath.Join(dir, "data", "mail")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	conf := dovecotConfig(t, dir, root)
	msgs := make([]testMessage, 4)
	for i := range msgs {
		msgs[i] = newMessage("alice@example.com", "bob@example.com", fmt.Sprintf("from the Dovecot days %d", i), 2000)
	}
	var script strings.Builder
	appendCmd := func(tag, folder, flags string, m testMessage) {
		fmt.Fprintf(&script, "%s APPEND %s (%s) {%d+}\r\n%s\r\n", tag, folder, flags, len(m.Raw), m.Raw)
	}
	appendCmd("a", "INBOX", `\Seen`, msgs[0])
	appendCmd("b", "INBOX", `\Flagged $Work`, msgs[1])
	appendCmd("c", "INBOX", ``, msgs[2])
	script.WriteString("d CREATE Projects\r\n")
	appendCmd("e", "Projects", `\Answered`, msgs[3])
	script.WriteString("f SELECT INBOX\r\ng UID STORE 3 +FLAGS.SILENT (\\Deleted)\r\nh EXPUNGE\r\ni LOGOUT\r\n")
	runDovecot(t, conf, root, "bob@example.com", script.String())

	views := map[string]map[string]string{}
	uidvs := map[string]uint32{}
	for _, f := range []string{"INBOX", "Projects"} {
		uidvs[f], views[f] = dovecotView(t, conf, root, "bob@example.com", f)
	}
	if len(views["INBOX"]) != 2 || len(views["Projects"]) != 1 {
		t.Fatalf("Dovecot wrote %v", views)
	}

	h := startSuiteIn(t, dir, configWith(officeAliases, "alice@example.com", "bob@example.com", "dave@example.com"), mailsuite.Options{})
	c, err := dialIMAPS(h.addr("imaps"), h.tls, "bob@example.com", users["bob@example.com"], nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, f := range []string{"INBOX", "Projects"} {
		uidv, got, err := fetchAll(c, f, true)
		if err != nil {
			t.Fatal(err)
		}
		ours := map[string]string{}
		for _, m := range got {
			id, err := checkMessage(m.Body)
			if err != nil {
				t.Fatalf("%s UID %d: %v", f, m.UID, err)
			}
			// Dovecot saved the file with LF line ends; IMAP sends CRLF.
			if bytes.Count(m.Body, []byte("\n")) != bytes.Count(m.Body, []byte("\r\n")) {
				t.Errorf("%s UID %d: BODY[] has bare LFs", f, m.UID)
			}
			ours[id] = fmt.Sprintf("UID %d FLAGS %s", m.UID, flagString(m.Flags))
		}
		if uidv != uidvs[f] {
			t.Errorf("%s: UIDVALIDITY %d, Dovecot's was %d", f, uidv, uidvs[f])
		}
		if fmt.Sprint(ours) != fmt.Sprint(views[f]) {
			t.Errorf("%s: mailsuite shows\n  %v\nDovecot showed\n  %v", f, ours, views[f])
		}
	}
	// The phone's UIDLs are the ones Dovecot's pop3 would give.
	uidls, err := uidlSet(h.addr("pop3s"), h.tls, "bob@example.com", users["bob@example.com"])
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range views["INBOX"] {
		var uid uint32
		fmt.Sscanf(v, "UID %d", &uid)
		if want := fmt.Sprintf("%08x%08x", uid, uidvs["INBOX"]); !uidls[want] {
			t.Errorf("POP3 UIDLs %v lack %s", keys(uidls), want)
		}
	}
	// New mail: above UID 3, which Dovecot gave and expunged.
	m := newMessage("alice@example.com", "bob@example.com", "first from mailsuite", 500)
	if err := submit(h.addr("submission"), h.tls, "alice@example.com", users["alice@example.com"], "alice@example.com", []string{"bob@example.com"}, m.Raw); err != nil {
		t.Fatal(err)
	}
	_, got, err := fetchAll(c, "INBOX", true)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range got {
		if id, _ := checkMessage(g.Body); id == m.ID && g.UID <= 3 {
			t.Errorf("new message got UID %d; Dovecot had already used UIDs up to 3", g.UID)
		}
	}
	if len(got) != 3 {
		t.Errorf("INBOX holds %d messages, want 3", len(got))
	}
	// Dovecot's own files (indexes, its uidvalidity file) are no problem.
	r, err := h.s.Store().Check(mailstore.CheckOptions{})
	requireStoreCheck(t, "Dovecot's tree", r, err)
}
