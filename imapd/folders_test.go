package imapd

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
)

func listNames(data []*imap.ListData) []string {
	var names []string
	for _, d := range data {
		names = append(names, d.Mailbox)
	}
	return names
}

func TestFoldersSpecialUseAndHierarchy(t *testing.T) {
	e := startServer(t)
	c := e.client(t, alice, alicePW, nil)

	list, err := c.List("", "*", &imap.ListOptions{ReturnSpecialUse: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	uses := map[string]imap.MailboxAttr{}
	for _, d := range list {
		for _, a := range d.Attrs {
			switch a {
			case imap.MailboxAttrSent, imap.MailboxAttrDrafts, imap.MailboxAttrTrash, imap.MailboxAttrJunk, imap.MailboxAttrArchive:
				uses[d.Mailbox] = a
			}
		}
		if d.Delim != '/' {
			t.Errorf("%s: delimiter %q", d.Mailbox, d.Delim)
		}
	}
	want := map[string]imap.MailboxAttr{"Sent": imap.MailboxAttrSent, "Drafts": imap.MailboxAttrDrafts,
		"Trash": imap.MailboxAttrTrash, "Junk": imap.MailboxAttrJunk, "Archive": imap.MailboxAttrArchive}
	for name, attr := range want {
		if uses[name] != attr {
			t.Errorf("%s: special use %q, want %q (list %v)", name, uses[name], attr, listNames(list))
		}
	}
	if list[0].Mailbox != "INBOX" {
		t.Errorf("INBOX not first: %v", listNames(list))
	}

	// CREATE with hierarchy and CREATE-SPECIAL-USE.
	if err := c.Create("Projects/2026/Q1", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Create("Flagged", &imap.CreateOptions{SpecialUse: []imap.MailboxAttr{imap.MailboxAttrTrash}}).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Create("Projects", nil).Wait(); err == nil || !strings.Contains(err.Error(), "ALREADYEXISTS") {
		t.Fatalf("CREATE existing: %v", err)
	}
	// '%' stops at the delimiter, '*' does not.
	pct, _ := c.List("", "Projects/%", nil).Collect()
	star, _ := c.List("", "Projects/*", nil).Collect()
	if got := listNames(pct); !slices.Equal(got, []string{"Projects/2026"}) {
		t.Errorf("Projects/%%: %v", got)
	}
	if got := listNames(star); !slices.Equal(got, []string{"Projects/2026", "Projects/2026/Q1"}) {
		t.Errorf("Projects/*: %v", got)
	}
	for _, d := range pct {
		if !slices.Contains(d.Attrs, imap.MailboxAttrHasChildren) {
			t.Errorf("Projects/2026 attrs %v, want \\HasChildren", d.Attrs)
		}
	}

	// RENAME moves the children along.
	if err := c.Rename("Projects", "Work", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	all, _ := c.List("", "*", nil).Collect()
	names := listNames(all)
	if !slices.Contains(names, "Work/2026/Q1") || slices.Contains(names, "Projects/2026") {
		t.Errorf("after RENAME: %v", names)
	}

	// RENAME INBOX moves its messages and leaves INBOX empty.
	e.deliver(t, testMsg("hello", "body"), alice)
	if err := c.Rename("INBOX", "Old", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	st, err := c.Status("Old", &imap.StatusOptions{NumMessages: true}).Wait()
	if err != nil || *st.NumMessages != 1 {
		t.Fatalf("Old after RENAME INBOX: %v %v", st, err)
	}
	st, err = c.Status("INBOX", &imap.StatusOptions{NumMessages: true}).Wait()
	if err != nil || *st.NumMessages != 0 {
		t.Fatalf("INBOX after RENAME INBOX: %v %v", st, err)
	}

	// DELETE; INBOX cannot be deleted.
	if err := c.Delete("Work/2026/Q1").Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete("INBOX").Wait(); err == nil {
		t.Fatal("DELETE INBOX succeeded")
	}
	if err := c.Delete("nosuch").Wait(); err == nil || !strings.Contains(err.Error(), "NONEXISTENT") {
		t.Fatalf("DELETE nosuch: %v", err)
	}

	// SUBSCRIBE / LSUB / LIST (SUBSCRIBED).
	if err := c.Subscribe("Old").Wait(); err != nil {
		t.Fatal(err)
	}
	sub, _ := c.List("", "*", &imap.ListOptions{SelectSubscribed: true}).Collect()
	if !slices.Contains(listNames(sub), "Old") {
		t.Errorf("LIST (SUBSCRIBED): %v", listNames(sub))
	}
	if err := c.Unsubscribe("Old").Wait(); err != nil {
		t.Fatal(err)
	}
	sub, _ = c.List("", "*", &imap.ListOptions{SelectSubscribed: true}).Collect()
	if slices.Contains(listNames(sub), "Old") {
		t.Errorf("still subscribed: %v", listNames(sub))
	}
}

func TestListExtendedAndStatus(t *testing.T) {
	e := startServer(t)
	e.deliver(t, testMsg("one", "x"), alice)
	e.deliver(t, testMsg("two", "y"), alice)
	rc := e.raw(t)
	rc.ok(`LOGIN alice@example.org "` + alicePW + `"`)
	u := rc.ok(`LIST "" "INBOX" RETURN (STATUS (MESSAGES UNSEEN SIZE UIDNEXT))`)
	if !hasLine(u, `^\* LIST \(.*\) "/" INBOX$`) || !hasLine(u, `^\* STATUS INBOX \(.*MESSAGES 2.*UNSEEN 2`) || !hasLine(u, `SIZE \d+`) {
		t.Errorf("LIST-STATUS: %q", u)
	}
	u = rc.ok(`LIST (SPECIAL-USE) "" "*"`)
	if len(u) != 5 || hasLine(u, "INBOX") {
		t.Errorf("LIST (SPECIAL-USE): %q", u)
	}
	u = rc.ok(`LIST "" ""`)
	if !hasLine(u, `^\* LIST \(\\Noselect\) "/" ""$`) {
		t.Errorf(`LIST "" "": %q`, u)
	}
	u = rc.ok(`LIST "" "inbox"`)
	if !hasLine(u, `"/" INBOX$`) {
		t.Errorf("case-insensitive INBOX: %q", u)
	}
	u = rc.ok(`NAMESPACE`)
	if !hasLine(u, `^\* NAMESPACE \(\("" "/"\)\) NIL NIL$`) {
		t.Errorf("NAMESPACE: %q", u)
	}
	u = rc.ok(`STATUS INBOX (MESSAGES DELETED APPENDLIMIT)`)
	if !hasLine(u, `MESSAGES 2`) || !hasLine(u, `DELETED 0`) || !hasLine(u, `APPENDLIMIT 52428800`) {
		t.Errorf("STATUS: %q", u)
	}
}

// Hostile names get NO and never create anything outside the user's dir.
func TestHostileMailboxNames(t *testing.T) {
	e := startServer(t)
	rc := e.raw(t)
	rc.ok(`LOGIN alice@example.org "` + alicePW + `"`)
	before := treeFiles(t, e.root)
	hostile := []string{
		`"../../etc"`, `"/etc/passwd"`, `"foo/../../bar"`, `".."`, `"a//b"`, `"."`, `".hidden"`,
		`"` + strings.Repeat("x", 300) + `"`, `"foo&AGEAYQ-"`, `"bad&-utf7&"`, `"&Jjo"`, "{9+}\r\ntab\there",
		"{5+}\r\na\x00b/c", `"back\\slash"`, `"star*"`,
	}
	for _, name := range hostile {
		for _, cmd := range []string{"CREATE %s", "SELECT %s", "DELETE %s", "STATUS %s (MESSAGES)", "APPEND %s {1+}\r\nx", "RENAME INBOX %s", "SUBSCRIBE %s"} {
			if strings.HasPrefix(cmd, "APPEND") && strings.Contains(name, "&") {
				// go-imap rejects invalid UTF-7 before reading the
				// literal, so the literal would be read as a command.
				continue
			}
			line := strings.Replace(cmd, "%s", name, 1)
			// go-imap answers some malformed names (NUL, control
			// characters in a literal) with NO and then drops the
			// connection: both are refusals.
			if done := rc.try(line); strings.HasPrefix(done, "OK") {
				t.Errorf("%q: %s", line, done)
			} else if done == "" {
				rc = e.raw(t)
				rc.ok(`LOGIN alice@example.org "` + alicePW + `"`)
			}
		}
	}
	rc.ok("NOOP")
	after := treeFiles(t, e.root)
	for f := range after {
		if !before[f] && !strings.HasPrefix(f, "mail/example.org/alice/") {
			t.Errorf("new file outside alice's maildir: %s", f)
		}
		if !before[f] && strings.Contains(f, "etc") {
			t.Errorf("created %s", f)
		}
	}
}

func treeFiles(t *testing.T, root string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err == nil {
			rel, _ := filepath.Rel(root, p)
			out[filepath.ToSlash(rel)] = true
		}
		return nil
	})
	return out
}
