package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

// dovecotIMAP is Debian's path of Dovecot's IMAP process (dovecot-imapd),
// which can serve one pre-authenticated session on stdin/stdout.
const dovecotIMAP = "/usr/lib/dovecot/imap"

// dovecotPOP3 is its POP3 process (dovecot-pop3d), likewise.
const dovecotPOP3 = "/usr/lib/dovecot/pop3"

// Dovecot opens the tree the suite wrote (after deliveries, a folder of
// bob's own, a nested one with a non-ASCII name, moves, a flag and a
// keyword) and sees the same UIDVALIDITY, the same UID for every message
// and the same flags: the tree is the Dovecot format the store promises,
// not something like it.
func TestDovecotReadsTheTree(t *testing.T) {
	if !haveDovecot(t) {
		t.Skip("Dovecot's imap/pop3 not installed: skipping the Dovecot cross-check (in CI, with CI=true, this fails)")
	}
	h := officeSuite(t)
	h.aliceMailsBob(t, 4, "for Dovecot")
	c, err := dialIMAPS(h.addr("imaps"), h.tls, "bob@example.com", users["bob@example.com"], nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, f := range []string{"Projects", "Kunden/Müller"} {
		if err := c.Create(f, nil).Wait(); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := fetchAll(c, "INBOX", false); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Move(imap.UIDSetNum(1), "Projects").Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Move(imap.UIDSetNum(4), "Kunden/Müller").Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Store(imap.UIDSetNum(2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagFlagged, "$Work"}}, nil).Collect(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Store(imap.UIDSetNum(3), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagSeen}}, nil).Collect(); err != nil {
		t.Fatal(err)
	}

	conf, tree := dovecotCopy(t, filepath.Join(h.dataDir, "mail"))
	// Dovecot's Maildir++ separator is "."; names are modified UTF-7
	// (RFC 3501 §5.1.3) on the wire and on disk.
	for folder, dovecotName := range map[string]string{"INBOX": "INBOX", "Projects": "Projects", "Kunden/Müller": "Kunden.M&APw-ller"} {
		uidv, msgs, err := fetchAll(c, folder, true)
		if err != nil {
			t.Fatal(err)
		}
		ours := map[string]string{}
		for _, m := range msgs {
			id, err := checkMessage(m.Body)
			if err != nil {
				t.Fatal(err)
			}
			ours[id] = fmt.Sprintf("UID %d FLAGS %s", m.UID, flagString(m.Flags))
		}
		dUIDV, theirs := dovecotView(t, conf, tree, "bob@example.com", dovecotName)
		if dUIDV != uidv {
			t.Errorf("%s: Dovecot sees UIDVALIDITY %d, mailsuite %d", folder, dUIDV, uidv)
		}
		if fmt.Sprint(ours) != fmt.Sprint(theirs) {
			t.Errorf("%s: Dovecot sees\n  %v\nmailsuite\n  %v", folder, theirs, ours)
		}
	}

	// Dovecot's own POP3 server gives the same UIDLs as ours (its default
	// pop3_uidl_format %08Xu%08Xv), so a phone can move between them.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, dovecotPOP3, "-c", conf)
	cmd.Env = append(os.Environ(), "USER=bob@example.com", "HOME="+filepath.Join(tree, "example.com", "bob"))
	cmd.Stdin = strings.NewReader("UIDL\r\nQUIT\r\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("dovecot pop3: %v\n%s", err, out)
	}
	theirs := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\d+ (\S+)\r$`).FindAllStringSubmatch(string(out), -1) {
		theirs[m[1]] = true
	}
	ours, err := uidlSet(h.addr("pop3s"), h.tls, "bob@example.com", users["bob@example.com"])
	if err != nil {
		t.Fatal(err)
	}
	if len(ours) == 0 || !sameSet(ours, theirs) {
		t.Errorf("UIDLs: Dovecot %v, mailsuite %v\n%s", keys(theirs), keys(ours), out)
	}
}

// dovecotCopy copies the store at mailRoot for Dovecot, which adds its own
// index files, and returns the config and the copy's root.
func dovecotCopy(t *testing.T, mailRoot string) (conf, tree string) {
	t.Helper()
	// Dovecot drops to "nobody" when run as root, so the copy lives in a
	// directory that nobody can reach (t.TempDir's parent is 0700).
	copyDir, err := os.MkdirTemp("", "mailsuite-dovecot-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(copyDir) })
	if err := os.Chmod(copyDir, 0o755); err != nil {
		t.Fatal(err)
	}
	tree = filepath.Join(copyDir, "mail")
	if out, err := exec.Command("cp", "-a", mailRoot, tree).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	return dovecotConfig(t, copyDir, tree), tree
}

// haveDovecot says whether Dovecot's imap and pop3 are installed; in CI
// they must be.
func haveDovecot(t *testing.T) bool {
	t.Helper()
	for _, p := range []string{dovecotIMAP, dovecotPOP3} {
		if _, err := os.Stat(p); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("Dovecot (dovecot-imapd, dovecot-pop3d) is required in CI: %v", err)
			}
			return false
		}
	}
	return true
}

// dovecotConfig writes a minimal dovecot.conf for the tree at root
// (<root>/<domain>/<local>, Maildir++). Dovecot refuses to touch mail as
// root, so as root the copy is handed to "nobody".
func dovecotConfig(t *testing.T, dir, root string) string {
	t.Helper()
	uid, gid := strconv.Itoa(os.Getuid()), strconv.Itoa(os.Getgid())
	if os.Getuid() == 0 {
		nobody, err := user.Lookup("nobody")
		if err != nil {
			t.Fatalf("running as root needs the nobody user for Dovecot: %v", err)
		}
		uid, gid = nobody.Uid, nobody.Gid
		if out, err := exec.Command("chown", "-R", uid+":"+gid, root).CombinedOutput(); err != nil {
			t.Fatalf("chown: %v %s", err, out)
		}
	}
	conf := fmt.Sprintf(`mail_location = maildir:%s/%%d/%%n
mail_uid = %s
mail_gid = %s
first_valid_uid = 1
base_dir = %s/run
log_path = /dev/stderr
ssl = no
`, root, uid, gid, dir)
	return writeFile(t, dir, "dovecot.conf", []byte(conf), 0o644)
}

var (
	reDovecotUIDV  = regexp.MustCompile(`\* OK \[UIDVALIDITY (\d+)\]`)
	reDovecotFetch = regexp.MustCompile(`\* \d+ FETCH \(UID (\d+) FLAGS \(([^)]*)\) BODY\[HEADER\.FIELDS \(MESSAGE-ID\)\] \{\d+\}\r\nMessage-I[Dd]: <([^>]+)>`)
)

// runDovecot runs one pre-authenticated Dovecot IMAP session for user with
// script on stdin and returns what Dovecot wrote; every tagged reply must
// be OK.
func runDovecot(t *testing.T, conf, root, user, script string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, dovecotIMAP, "-c", conf)
	local, domain := splitAddr(user)
	cmd.Env = append(os.Environ(), "USER="+user, "HOME="+filepath.Join(root, domain, local))
	cmd.Stdin = strings.NewReader(script)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("dovecot imap: %v\n%s\n%s", err, out.String(), errb.String())
	}
	if bad := regexp.MustCompile(`(?m)^[a-z] (NO|BAD) .*`).FindString(out.String()); bad != "" {
		t.Fatalf("dovecot: %s\n%s\n%s", bad, out.String(), errb.String())
	}
	return out.String()
}

// dovecotView has Dovecot read folder and returns its UIDVALIDITY and
// Message-ID → "UID n FLAGS (...)".
func dovecotView(t *testing.T, conf, root, user, folder string) (uint32, map[string]string) {
	t.Helper()
	out := runDovecot(t, conf, root, user, "a EXAMINE "+folder+"\r\nb UID FETCH 1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])\r\nc LOGOUT\r\n")
	m := reDovecotUIDV.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no UIDVALIDITY from Dovecot:\n%s", out)
	}
	uidv, _ := strconv.ParseUint(m[1], 10, 32)
	view := map[string]string{}
	for _, f := range reDovecotFetch.FindAllStringSubmatch(out, -1) {
		var flags []imap.Flag
		for _, fl := range strings.Fields(f[2]) {
			flags = append(flags, imap.Flag(fl))
		}
		view[f[3]] = fmt.Sprintf("UID %s FLAGS %s", f[1], flagString(flags))
	}
	return uint32(uidv), view
}

// flagString is flags sorted, without \Recent (which belongs to a session,
// not to the tree).
func flagString(flags []imap.Flag) string {
	var s []string
	for _, f := range flags {
		if f != `\Recent` {
			s = append(s, string(f))
		}
	}
	sort.Strings(s)
	return "(" + strings.Join(s, " ") + ")"
}
