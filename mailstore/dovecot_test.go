package mailstore

// Dovecot compatibility: Dovecot's own imap binary, run pre-authenticated
// over stdin/stdout on the tree we wrote, must see our UIDs, UIDVALIDITY,
// flags, keywords and folders; and we must read a tree Dovecot wrote.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const dovecotIMAP = "/usr/lib/dovecot/imap"

// dovecot runs Dovecot's imap process against one maildir.
type dovecot struct {
	t       *testing.T
	conf    string
	home    string
	maildir string
	asRoot  bool
}

func newDovecot(t *testing.T, maildir string) *dovecot {
	t.Helper()
	if _, err := os.Stat(dovecotIMAP); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Dovecot is required in CI (apt-get install dovecot-imapd): %v", err)
		}
		t.Skipf("Dovecot not installed (%s missing; apt-get install dovecot-imapd): skipping compatibility test", dovecotIMAP)
	}
	base := t.TempDir()
	d := &dovecot{t: t, home: filepath.Join(base, "home"), maildir: maildir, asRoot: os.Getuid() == 0}
	for _, p := range []string{d.home, filepath.Join(base, "run"), maildir} {
		os.MkdirAll(p, 0o755)
	}
	conf := fmt.Sprintf(`mail_location = maildir:%s
protocols = imap
log_path = %s
base_dir = %s
state_dir = %s
ssl = no
mail_fsync = always
`, maildir, filepath.Join(base, "log"), filepath.Join(base, "run"), filepath.Join(base, "run"))
	if d.asRoot {
		// Dovecot refuses to access mail as root: run it as nobody.
		conf += "mail_uid = 65534\nmail_gid = 65534\nfirst_valid_uid = 1\nfirst_valid_gid = 1\n"
	}
	d.conf = filepath.Join(base, "dovecot.conf")
	if err := os.WriteFile(d.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(base, "log"), nil, 0o666)
	if d.asRoot {
		// nobody must be able to walk down to the test's directories.
		for _, p := range []string{base, maildir} {
			for ; p != "/" && p != os.TempDir(); p = filepath.Dir(p) {
				if st, err := os.Stat(p); err == nil && st.IsDir() {
					os.Chmod(p, st.Mode().Perm()|0o711)
				}
			}
		}
		os.Chown(d.home, 65534, 65534)
	}
	return d
}

// run sends IMAP commands (tagged here) and returns the output.
func (d *dovecot) run(cmds ...string) string {
	d.t.Helper()
	if d.asRoot {
		// Give the tree to the user Dovecot runs as (root still reads it).
		filepath.Walk(filepath.Dir(d.maildir), func(p string, _ os.FileInfo, err error) error {
			if err == nil {
				os.Lchown(p, 65534, 65534)
			}
			return nil
		})
	}
	var in strings.Builder
	for i, c := range cmds {
		fmt.Fprintf(&in, "t%d %s\r\n", i, c)
	}
	in.WriteString("tz LOGOUT\r\n")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, dovecotIMAP, "-c", d.conf)
	cmd.Env = []string{"USER=tester", "HOME=" + d.home, "PATH=/usr/bin:/bin"}
	cmd.Stdin = strings.NewReader(in.String())
	out, err := cmd.CombinedOutput()
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(filepath.Dir(d.conf), "log"))
		d.t.Fatalf("dovecot imap: %v\n%s\nlog:\n%s", err, out, log)
	}
	for i := range cmds {
		if !regexp.MustCompile(`(?m)^t` + strconv.Itoa(i) + ` OK`).Match(out) {
			d.t.Fatalf("dovecot: command %q failed:\n%s", cmds[i], out)
		}
	}
	return string(out)
}

// sections splits output into the responses to each command: sections[i]
// ends with command i's tagged reply.
func sections(out string) []string {
	var res []string
	var cur strings.Builder
	for line := range strings.SplitSeq(out, "\n") {
		cur.WriteString(line + "\n")
		if regexp.MustCompile(`^t\d+ `).MatchString(line) {
			res = append(res, cur.String())
			cur.Reset()
		}
	}
	return res
}

var (
	fetchLineRE = regexp.MustCompile(`(?m)^\* \d+ FETCH \(.*$`)
	fetchUIDRE  = regexp.MustCompile(`UID (\d+)`)
	fetchFlagRE = regexp.MustCompile(`FLAGS \(([^)]*)\)`)
)

// dovecotFlags parses "UID FETCH 1:* (FLAGS)" output into uid → sorted flags
// (without \Recent, which is session state).
func dovecotFlags(out string) map[UID]string {
	res := map[UID]string{}
	for _, line := range fetchLineRE.FindAllString(out, -1) {
		um, fm := fetchUIDRE.FindStringSubmatch(line), fetchFlagRE.FindStringSubmatch(line)
		if um == nil || fm == nil {
			continue
		}
		n, _ := strconv.Atoi(um[1])
		var fl []string
		for f := range strings.FieldsSeq(fm[1]) {
			if f != `\Recent` {
				fl = append(fl, f)
			}
		}
		sort.Strings(fl)
		res[UID(n)] = strings.Join(fl, " ")
	}
	return res
}

func ourFlags(msgs []MessageInfo) map[UID]string {
	res := map[UID]string{}
	for _, m := range msgs {
		fl := make([]string, len(m.Flags))
		for i, f := range m.Flags {
			fl[i] = string(f)
		}
		sort.Strings(fl)
		res[m.UID] = strings.Join(fl, " ")
	}
	return res
}

func uidValidityIn(t *testing.T, out string) uint32 {
	t.Helper()
	m := regexp.MustCompile(`\[UIDVALIDITY (\d+)\]`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no UIDVALIDITY in:\n%s", out)
	}
	v, _ := strconv.ParseUint(m[1], 10, 32)
	return uint32(v)
}

func TestDovecotReadsOurTree(t *testing.T) {
	root := t.TempDir()
	maildir := filepath.Join(root, "x.test", "dc")
	dc := newDovecot(t, maildir)
	s := openStore(t, root)
	u := mustUser(t, s, "dc@x.test")
	for i := 0; i < 3; i++ {
		deliver(t, s, msg(i), "dc@x.test")
	}
	inbox := mustFolder(t, u, Inbox)
	msgs := mustSync(t, inbox)
	inbox.SetFlags([]UID{msgs[0].UID}, FlagsAdd, []Flag{FlagSeen})
	inbox.SetFlags([]UID{msgs[1].UID}, FlagsAdd, []Flag{FlagFlagged, "$Label1", "Work"})
	inbox.Expunge([]UID{msgs[2].UID})
	deliver(t, s, msg(3), "dc@x.test") // left in new/: Dovecot assigns its UID
	if err := u.CreateFolder("Ärger/Sub", UseNone); err != nil {
		t.Fatal(err)
	}
	sub := mustFolder(t, u, "Ärger/Sub")
	if _, err := sub.Append(strings.NewReader(msg(9)), []Flag{FlagAnswered, "Custom"}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	out := dc.run("SELECT INBOX", "UID FETCH 1:* (FLAGS)", `LIST "" "*"`,
		`SELECT "&AMQ-rger.Sub"`, "UID FETCH 1:* (FLAGS RFC822.SIZE)")
	sec := sections(out)
	parts := []string{sec[0] + sec[1], sec[3] + sec[4]}
	if got := uidValidityIn(t, parts[0]); got != inbox.UIDValidity() {
		t.Fatalf("Dovecot UIDVALIDITY %d, ours %d", got, inbox.UIDValidity())
	}
	if got := uidValidityIn(t, parts[1]); got != sub.UIDValidity() {
		t.Fatalf("sub-folder: Dovecot UIDVALIDITY %d, ours %d", got, sub.UIDValidity())
	}
	dv := dovecotFlags(parts[0])
	ours := ourFlags(mustSync(t, inbox)) // our sync sees the UID Dovecot gave
	if len(ours) != 3 || len(dv) != 3 {
		t.Fatalf("Dovecot sees %v, we see %v\n%s", dv, ours, out)
	}
	for uid, f := range ours {
		if dv[uid] != f {
			t.Errorf("UID %d: Dovecot flags %q, ours %q", uid, dv[uid], f)
		}
	}
	if dv[1] != `\Seen` || dv[2] != `$Label1 Work \Flagged` || dv[4] != "" {
		t.Errorf("unexpected Dovecot view %v", dv)
	}
	if dvSub := dovecotFlags(parts[1]); dvSub[1] != `Custom \Answered` {
		t.Errorf("sub-folder flags %v\n%s", dvSub, parts[1])
	}
	for _, want := range []string{`"." INBOX`, `"." Sent`, `"." &AMQ-rger.Sub`} {
		if !strings.Contains(out, want) {
			t.Errorf("LIST lacks %s:\n%s", want, out)
		}
	}
	if !strings.Contains(parts[1], fmt.Sprintf("RFC822.SIZE %d", len(msg(9))+strings.Count(msg(9), "\n"))) {
		t.Errorf("size differs:\n%s", parts[1])
	}
}

func TestWeReadDovecotTree(t *testing.T) {
	root := t.TempDir()
	maildir := filepath.Join(root, "x.test", "dv")
	dc := newDovecot(t, maildir)
	out := dc.run(
		"APPEND INBOX {20+}\r\nSubject: one\r\n\r\nhi\r\n",
		`APPEND INBOX (\Seen $Forwarded Junk) {20+}`+"\r\nSubject: two\r\n\r\nhi\r\n",
		`APPEND INBOX (\Flagged \Draft) {22+}`+"\r\nSubject: three\r\n\r\nhi\r\n",
		`CREATE "Projekt.&AMQ-nderung"`,
		`APPEND "Projekt.&AMQ-nderung" (\Answered) {21+}`+"\r\nSubject: four\r\n\r\nhi\r\n",
		"SELECT INBOX",
		`UID STORE 1 +FLAGS (\Answered NonJunk)`,
		"UID FETCH 1:* (FLAGS)",
	)
	sec := sections(out)
	// Dovecot may answer a pipelined FETCH before the STORE's tagged OK.
	dv := dovecotFlags(sec[6] + sec[7])
	validity := uidValidityIn(t, sec[5])

	s := openStore(t, root)
	u := mustUser(t, s, "dv@x.test")
	inbox := mustFolder(t, u, Inbox)
	if inbox.UIDValidity() != validity {
		t.Fatalf("UIDVALIDITY: ours %d, Dovecot %d", inbox.UIDValidity(), validity)
	}
	msgs := mustSync(t, inbox)
	if got := ourFlags(msgs); len(got) != 3 || !mapsEqual(got, dv) {
		t.Fatalf("flags: ours %v, Dovecot %v", got, dv)
	}
	if got := ourFlags(msgs)[2]; got != `$Forwarded Junk \Seen` {
		t.Fatalf("UID 2 flags %q", got)
	}
	if kw := inbox.Keywords(); !slices.Contains(kw, "NonJunk") || !slices.Contains(kw, "$Forwarded") {
		t.Fatalf("keywords %v", kw)
	}
	if msgs[0].VSize != 20 || msgs[0].Size != 17 { // Dovecot stores LF line ends
		t.Fatalf("sizes %+v", msgs[0])
	}
	names := folderNamesOf(t, u)
	if !slices.Contains(names, "Projekt/Änderung") || !slices.Contains(names, "Projekt(noselect)") {
		t.Fatalf("folders %v", names)
	}
	pm := mustSync(t, mustFolder(t, u, "Projekt/Änderung"))
	if len(pm) != 1 || flagsString(pm[0].Flags) != `\Answered` {
		t.Fatalf("Dovecot sub-folder %+v", pm)
	}

	// Round trip: our changes are seen by Dovecot with the same UIDs.
	inbox.SetFlags([]UID{1}, FlagsReplace, []Flag{FlagSeen, "Ours"})
	inbox.Expunge([]UID{3})
	deliver(t, s, msg(5), "dv@x.test")
	ours := ourFlags(mustSync(t, inbox))
	out = dc.run("SELECT INBOX", "UID FETCH 1:* (FLAGS)")
	if got := dovecotFlags(out); !mapsEqual(got, ours) || got[4] != "" || got[1] != `Ours \Seen` {
		t.Fatalf("after our changes: Dovecot %v, ours %v\n%s", got, ours, out)
	}
	if uidValidityIn(t, out) != validity {
		t.Fatal("UIDVALIDITY changed")
	}
}

func mapsEqual(a, b map[UID]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

// TestHelperDeliver is not a test: TestDovecotConcurrentWithUs runs the
// test binary as another process (as Dovecot's user, when tests run as
// root) to deliver and sync beside Dovecot.
func TestHelperDeliver(t *testing.T) {
	root := os.Getenv("MAILSTORE_HELPER_ROOT")
	if root == "" {
		t.Skip("helper process only")
	}
	s, err := Open(Options{Root: root, Hostname: "helper.example"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	u, err := s.User("cc@x.test")
	if err != nil {
		t.Fatal(err)
	}
	inbox, err := u.Folder(Inbox)
	if err != nil {
		t.Fatal(err)
	}
	for i := concurrentEach; i < 2*concurrentEach; i++ {
		if err := tryDeliver(s, concurrentBody(i), "cc@x.test"); err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 {
			if _, err := inbox.Sync(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := inbox.Sync(); err != nil {
		t.Fatal(err)
	}
}

const concurrentEach = 60 // messages each side adds

// concurrentBody is message n: CRLF, 100+n octets, so its size names it.
func concurrentBody(n int) string {
	return "Subject: m\r\n\r\n" + strings.Repeat("x", 100+n-16) + "\r\n"
}

// Dovecot and a mailsuite process work on one folder at the same time:
// Dovecot APPENDs while the other delivers and syncs. Both must end with
// the same UID for every message (checked by size, unique per message),
// none twice.
func TestDovecotConcurrentWithUs(t *testing.T) {
	root := t.TempDir()
	maildir := filepath.Join(root, "x.test", "cc")
	dc := newDovecot(t, maildir)
	dc.run("SELECT INBOX") // Dovecot creates the maildir and its index files
	var cmds []string
	for i := 0; i < concurrentEach; i++ {
		b := concurrentBody(i)
		cmds = append(cmds, fmt.Sprintf("APPEND INBOX {%d+}\r\n%s", len(b), b))
	}
	bin := os.Args[0]
	if dc.asRoot {
		// nobody cannot reach the go tool's build directory: copy the
		// test binary where it can.
		dir := t.TempDir()
		os.Chmod(dir, 0o755)
		data, err := os.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		bin = filepath.Join(dir, "helper")
		if err := os.WriteFile(bin, data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	helper := exec.Command(bin, "-test.run=^TestHelperDeliver$", "-test.count=1")
	helper.Env = append(os.Environ(), "MAILSTORE_HELPER_ROOT="+root)
	if dc.asRoot {
		// The helper runs as the user Dovecot runs as, as a real
		// installation would, so each can read what the other writes.
		os.Chown(root, 65534, 65534)
		helper.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	}
	done := make(chan string)
	go func() { done <- dc.run(cmds...) }()
	if out, err := helper.CombinedOutput(); err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	if out := <-done; strings.Contains(out, "Error") {
		t.Errorf("Dovecot reported errors:\n%s", out)
	}
	s := openStore(t, root)
	ours := mustSync(t, mustFolder(t, mustUser(t, s, "cc@x.test"), Inbox))
	if len(ours) != 2*concurrentEach {
		t.Fatalf("we see %d messages, want %d", len(ours), 2*concurrentEach)
	}
	out := dc.run("SELECT INBOX", "UID FETCH 1:* (RFC822.SIZE)")
	sizeRE := regexp.MustCompile(`UID (\d+) RFC822\.SIZE (\d+)|RFC822\.SIZE (\d+) UID (\d+)`)
	theirs := map[UID]int64{}
	for _, m := range sizeRE.FindAllStringSubmatch(out, -1) {
		u, sz := m[1], m[2]
		if u == "" {
			u, sz = m[4], m[3]
		}
		n, _ := strconv.Atoi(u)
		v, _ := strconv.ParseInt(sz, 10, 64)
		theirs[UID(n)] = v
	}
	if len(theirs) != 2*concurrentEach {
		t.Fatalf("Dovecot sees %d messages, want %d:\n%s", len(theirs), 2*concurrentEach, out)
	}
	sizes := map[int64]bool{}
	for _, m := range ours {
		if theirs[m.UID] != m.VSize {
			t.Errorf("UID %d: Dovecot size %d, ours %d", m.UID, theirs[m.UID], m.VSize)
		}
		if sizes[m.VSize] {
			t.Errorf("message of size %d listed twice", m.VSize)
		}
		sizes[m.VSize] = true
	}
}
