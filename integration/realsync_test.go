package integration

// Real clients that keep a copy of the mailbox: fetchmail (POP3, keep,
// UIDL) and mbsync (IMAP, every folder, both ways).

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailsuite/mailsuite/internal/testkit"
)

// fetchmail in keep mode with UIDL: the first run fetches every message
// (whole), leaves them on the server and remembers their UIDLs; a second
// run fetches nothing; a new message is the only one fetched by a third.
func TestRealClientFetchmail(t *testing.T) {
	fetchmail := testkit.NeedTool(t, "fetchmail")
	h := officeSuite(t)
	ids := h.aliceMailsBob(t, 3, "for fetchmail")
	home := t.TempDir()
	out := filepath.Join(home, "out")
	if err := os.Mkdir(out, 0o700); err != nil {
		t.Fatal(err)
	}
	mda := writeFile(t, home, "mda.sh", []byte("#!/bin/sh\nexec cat > \""+out+"/$(date +%s%N)-$$.eml\"\n"), 0o700)
	idfile := filepath.Join(home, "fetchids")
	// fetchmail does not match IP addresses in the certificate, so it is
	// told the certificate's name (sslcommonname).
	rc := writeFile(t, home, "fetchmailrc", []byte(fmt.Sprintf(`set no syslog
poll 127.0.0.1 with service %s protocol POP3 uidl timeout 20:
  user "bob@example.com" there with password "%s" is "bob" here
  options keep ssl sslcertck sslcertfile "%s" sslcommonname "mail.example.com" mda "%s"
`, h.port("pop3s"), users["bob@example.com"], h.caFile(), mda)), 0o600)
	env := []string{"HOME=" + home}
	run := func() int {
		_, code := runTool(t, env, []int{1}, fetchmail, "-f", rc, "--idfile", idfile, "-N", "--nosyslog")
		return code
	}
	fetched := func() []string {
		ents, err := os.ReadDir(out)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range ents {
			got = append(got, readMessageFile(t, filepath.Join(out, e.Name())))
			os.Remove(filepath.Join(out, e.Name()))
		}
		return got
	}
	if code := run(); code != 0 {
		t.Fatalf("first fetchmail run exited %d, want 0 (mail fetched)", code)
	}
	wantIDs(t, "first fetchmail run", fetched(), ids...)
	if code := run(); code != 1 {
		t.Errorf("second fetchmail run exited %d, want 1 (no new mail)", code)
	}
	wantIDs(t, "second fetchmail run", fetched())
	ids = append(ids, h.aliceMailsBob(t, 1, "one more")...)
	if code := run(); code != 0 {
		t.Fatalf("third fetchmail run exited %d", code)
	}
	wantIDs(t, "third fetchmail run", fetched(), ids[3])
	// keep: everything is still on the server, and fetchmail's id file
	// holds the server's UIDLs.
	checkInbox(t, h, "bob@example.com", ids...)
	uidls, err := uidlSet(h.addr("pop3s"), h.tls, "bob@example.com", users["bob@example.com"])
	if err != nil {
		t.Fatal(err)
	}
	idData, err := os.ReadFile(idfile)
	if err != nil {
		t.Fatal(err)
	}
	for u := range uidls {
		if !strings.Contains(string(idData), u) {
			t.Errorf("fetchmail's id file lacks UIDL %s:\n%s", u, idData)
		}
	}
}

// mbsync pulls every folder (INBOX, a folder of bob's own, the defaults)
// with flags into a local maildir; a second run changes nothing on either
// side.
func TestRealClientMbsync(t *testing.T) {
	mbsync := testkit.NeedTool(t, "mbsync")
	h := officeSuite(t)
	ids := h.aliceMailsBob(t, 4, "for mbsync")
	// Bob's desktop: a folder of his own, a flag, something in Trash.
	c, err := dialIMAPS(h.addr("imaps"), h.tls, "bob@example.com", users["bob@example.com"], nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Create("Projects/2026", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := fetchAll(c, "INBOX", false); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Move(imap.UIDSetNum(1), "Projects/2026").Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Move(imap.UIDSetNum(2), "Trash").Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Store(imap.UIDSetNum(3), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagFlagged}}, nil).Collect(); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"INBOX": {ids[2], ids[3]}, "Projects/2026": {ids[0]}, "Trash": {ids[1]}}

	home := t.TempDir()
	local := filepath.Join(home, "Mail")
	if err := os.Mkdir(local, 0o700); err != nil { // mbsync does not make its root
		t.Fatal(err)
	}
	rc := writeFile(t, home, "mbsyncrc", []byte(fmt.Sprintf(`IMAPAccount bob
Host 127.0.0.1
Port %s
User bob@example.com
Pass %s
SSLType IMAPS
CertificateFile %s
Timeout 20

IMAPStore remote
Account bob

MaildirStore local
Path %s/
Inbox %s/INBOX
SubFolders Verbatim

Channel bob
Far :remote:
Near :local:
Patterns *
Create Near
Sync All
SyncState *
`, h.port("imaps"), users["bob@example.com"], h.caFile(), local, local)), 0o600)
	env := []string{"HOME=" + home}
	runTool(t, env, nil, mbsync, "-c", rc, "bob")

	for folder, wantFolder := range want {
		got, flagged := readLocalMaildir(t, filepath.Join(local, folder))
		wantIDs(t, "mbsync's local "+folder, got, wantFolder...)
		if folder == "INBOX" && !(len(flagged) == 1 && flagged[0] == ids[2]) {
			t.Errorf("local INBOX flagged messages %v, want [%s]", flagged, ids[2])
		}
	}
	for _, f := range []string{"Sent", "Drafts", "Junk", "Archive"} {
		if st, err := os.Stat(filepath.Join(local, f, "cur")); err != nil || !st.IsDir() {
			t.Errorf("mbsync did not create the empty folder %s locally: %v", f, err)
		}
	}

	localBefore := treeListing(t, local)
	serverBefore := serverState(t, c)
	out, _ := runTool(t, env, nil, mbsync, "-V", "-c", rc, "bob")
	if after := treeListing(t, local); after != localBefore {
		t.Errorf("second mbsync run changed the local maildir:\nbefore:\n%s\nafter:\n%s\nmbsync:\n%s", localBefore, after, out)
	}
	if after := serverState(t, c); after != serverBefore {
		t.Errorf("second mbsync run changed the server:\nbefore:\n%s\nafter:\n%s\nmbsync:\n%s", serverBefore, after, out)
	}
}

// readMessageFile returns the Message-ID of a message file a client
// wrote, failing the test if the message is not whole.
func readMessageFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	id, err := checkMessage(data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return id
}

// readLocalMaildir returns the Message-IDs in a maildir folder (each
// checked whole) and those with the F (flagged) flag.
func readLocalMaildir(t *testing.T, dir string) (ids, flagged []string) {
	t.Helper()
	for _, sub := range []string{"cur", "new"} {
		ents, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			t.Fatalf("local maildir: %v", err)
		}
		for _, e := range ents {
			id := readMessageFile(t, filepath.Join(dir, sub, e.Name()))
			ids = append(ids, id)
			if _, info, ok := strings.Cut(e.Name(), ":2,"); ok && strings.Contains(info, "F") {
				flagged = append(flagged, id)
			}
		}
	}
	return ids, flagged
}

// treeListing lists every file under dir by name (maildir names carry the
// flags), leaving out mbsync's own bookkeeping, which it may rewrite with
// the same meaning.
func treeListing(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if strings.Contains(rel, ".mbsyncstate") || strings.HasSuffix(rel, ".uidvalidity") {
			return nil
		}
		fmt.Fprintln(&b, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// serverState lists every folder's UIDs and flags.
func serverState(t *testing.T, c *imapclient.Client) string {
	t.Helper()
	list, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range list {
		names = append(names, l.Mailbox)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, name := range names {
		uidv, msgs, err := fetchAll(c, name, false)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s uidvalidity=%d\n", name, uidv)
		for _, m := range msgs {
			fmt.Fprintf(&b, "  %d %v\n", m.UID, m.Flags)
		}
	}
	return b.String()
}
