package mailstore

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// checkEnv is a small tree built through the Store API: alice has three
// messages in INBOX (synced, so in cur/ with UIDs) and one in Archive with
// \Seen and a keyword.
type checkEnv struct {
	s             *Store
	root          string
	inbox, arch   string // folder directories
	user          *User
	inboxF, archF *Folder
	key           string // the damaged message's base name, for after()
}

// pick returns the path of one INBOX message and remembers its key.
func (e *checkEnv) pick(t *testing.T) string {
	p := curFile(t, e.inbox, 0)
	e.key, _, _ = splitFileName(filepath.Base(p))
	return p
}

func (e *checkEnv) picked(t *testing.T) MessageInfo {
	t.Helper()
	for _, m := range mustSync(t, e.inboxF) {
		if m.Key == e.key {
			return m
		}
	}
	t.Fatalf("message %s is gone", e.key)
	return MessageInfo{}
}

func newCheckEnv(t *testing.T) *checkEnv {
	t.Helper()
	root := t.TempDir()
	s := openStore(t, root, func(o *Options) { o.Logger = quietLog() })
	e := &checkEnv{s: s, root: root, inbox: filepath.Join(root, "example.com", "alice")}
	e.arch = filepath.Join(e.inbox, ".Archive")
	for i := 0; i < 3; i++ {
		deliver(t, s, msg(i), "alice@example.com")
	}
	e.user = mustUser(t, s, "alice@example.com")
	e.inboxF = mustFolder(t, e.user, Inbox)
	if n := len(mustSync(t, e.inboxF)); n != 3 {
		t.Fatalf("%d messages in INBOX", n)
	}
	e.archF = mustFolder(t, e.user, "Archive")
	if _, err := e.archF.Append(strings.NewReader(msg(9)), []Flag{FlagSeen, "$Work"}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	return e
}

// curFile returns the path of the n-th file (by name) in dir's cur/.
func curFile(t *testing.T, dir string, n int) string {
	t.Helper()
	names := filesIn(t, filepath.Join(dir, "cur"))
	slices.Sort(names)
	if n >= len(names) {
		t.Fatalf("no file %d in %s/cur: %v", n, dir, names)
	}
	return filepath.Join(dir, "cur", names[n])
}

func (e *checkEnv) check(t *testing.T, repair bool) Report {
	t.Helper()
	rep, err := e.s.Check(CheckOptions{Repair: repair})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func findingsOf(rep Report, kind string) []Finding {
	var out []Finding
	for _, f := range rep.Findings {
		if f.Kind == kind {
			out = append(out, f)
		}
	}
	return out
}

func dumpFindings(rep Report) string {
	var b strings.Builder
	for _, f := range rep.Findings {
		b.WriteString("\n\t" + f.String())
	}
	return b.String()
}

func mustWrite(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func mustRename(t *testing.T, from, to string) {
	t.Helper()
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
}

func makeOld(t *testing.T, path string, age time.Duration) {
	t.Helper()
	old := time.Now().Add(-age)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
}

func keysOf(t *testing.T, f *Folder) map[string]UID {
	t.Helper()
	out := map[string]UID{}
	for _, m := range mustSync(t, f) {
		out[m.Key] = m.UID
	}
	return out
}

func TestCheckCleanTree(t *testing.T) {
	e := newCheckEnv(t)
	deliver(t, e.s, msg(5), "alice@example.com", "bob@example.com") // not yet synced: pending
	rep := e.check(t, false)
	if len(rep.Findings) != 0 {
		t.Fatalf("clean tree: %s", dumpFindings(rep))
	}
	if rep.Users != 2 || rep.Messages != 6 || rep.Pending != 2 || rep.Folders != 12 {
		t.Errorf("counts: users %d folders %d messages %d pending %d", rep.Users, rep.Folders, rep.Messages, rep.Pending)
	}
	// Repair on a clean tree changes nothing.
	before := treeFiles(t, e.root)
	if rep := e.check(t, true); len(rep.Findings) != 0 {
		t.Fatalf("repair of a clean tree: %s", dumpFindings(rep))
	}
	if after := treeFiles(t, e.root); !slices.Equal(before, after) {
		t.Errorf("repair of a clean tree changed it:\n%v\n%v", before, after)
	}
}

// An expunge leaves its dovecot-uidlist record (neither the store nor
// Dovecot rewrites the list for it): a note, never a problem.
func TestCheckExpungeIsNotAProblem(t *testing.T) {
	e := newCheckEnv(t)
	msgs := mustSync(t, e.inboxF)
	if _, err := e.inboxF.Expunge([]UID{msgs[1].UID}); err != nil {
		t.Fatal(err)
	}
	rep := e.check(t, false)
	st := findingsOf(rep, KindStaleRecords)
	if rep.Problems() != 0 || len(st) != 1 || !st[0].Note || !strings.Contains(st[0].Detail, fmt.Sprint(msgs[1].UID)) {
		t.Fatalf("after expunge: %s", dumpFindings(rep))
	}
}

type damageCase struct {
	name   string
	damage func(t *testing.T, e *checkEnv)
	kind   string
	note   bool // a note, not a problem
	fixed  bool // Repair fixes it
	// brokenLock: a stale dotlock is broken by the check itself.
	brokenLock bool
	after      func(t *testing.T, e *checkEnv) // checks after the repair
}

var damageCases = []damageCase{
	{name: "listed file missing", kind: KindStaleRecords, note: true, fixed: true,
		damage: func(t *testing.T, e *checkEnv) { os.Remove(curFile(t, e.inbox, 0)) },
		after: func(t *testing.T, e *checkEnv) {
			data, _ := os.ReadFile(filepath.Join(e.inbox, "dovecot-uidlist"))
			if n := bytes.Count(data, []byte("\n")); n != 3 {
				t.Errorf("uidlist keeps %d lines, want header + 2:\n%s", n, data)
			}
		}},
	{name: "cur file without UID", kind: KindNoUID, fixed: true,
		damage: func(t *testing.T, e *checkEnv) {
			mustWrite(t, filepath.Join(e.inbox, "cur", "1700000000.byhand.host:2,S"), "Subject: x\n\nhi\n")
		},
		after: func(t *testing.T, e *checkEnv) {
			if keysOf(t, e.inboxF)["1700000000.byhand.host"] == 0 {
				t.Error("the hand-made file has no UID after repair")
			}
		}},
	{name: "one base name twice", kind: KindDuplicate,
		damage: func(t *testing.T, e *checkEnv) {
			p := curFile(t, e.inbox, 0)
			key, _, _ := splitFileName(filepath.Base(p))
			data, _ := os.ReadFile(p)
			mustWrite(t, filepath.Join(e.inbox, "new", key), string(data))
		}},
	{name: "unsorted flags", kind: KindUnsortedFlags, fixed: true,
		damage: func(t *testing.T, e *checkEnv) {
			p := e.pick(t)
			mustRename(t, p, filepath.Join(e.inbox, "cur", fileName(e.key, "SFS")))
		},
		after: func(t *testing.T, e *checkEnv) {
			m := e.picked(t)
			if flagsString(m.Flags) != `\Flagged \Seen` {
				t.Errorf("flags after repair: %v", m.Flags)
			}
			if _, err := os.Stat(filepath.Join(e.inbox, "cur", fileName(m.Key, "FS"))); err != nil {
				t.Error(err)
			}
		}},
	{name: "letter that is no flag", kind: KindBadFlags,
		damage: func(t *testing.T, e *checkEnv) {
			p := curFile(t, e.inbox, 0)
			key, _, _ := splitFileName(filepath.Base(p))
			mustRename(t, p, filepath.Join(e.inbox, "cur", fileName(key, "1S")))
		}},
	{name: "flags in new", kind: KindInfoInNew, fixed: true,
		damage: func(t *testing.T, e *checkEnv) {
			p := e.pick(t)
			mustRename(t, p, filepath.Join(e.inbox, "new", fileName(e.key, "S")))
		},
		after: func(t *testing.T, e *checkEnv) {
			if m := e.picked(t); flagsString(m.Flags) != `\Seen` {
				t.Errorf("flags after repair: %v", m.Flags)
			}
		}},
	{name: "info other than 2,", kind: KindBadInfo, fixed: true,
		damage: func(t *testing.T, e *checkEnv) {
			p := curFile(t, e.inbox, 0)
			key, _, _ := splitFileName(filepath.Base(p))
			mustRename(t, p, filepath.Join(e.inbox, "cur", key+":1,experimental"))
		}},
	{name: "undefined keyword letter", kind: KindUndefinedKw,
		damage: func(t *testing.T, e *checkEnv) {
			p := curFile(t, e.inbox, 0)
			key, _, _ := splitFileName(filepath.Base(p))
			mustRename(t, p, filepath.Join(e.inbox, "cur", fileName(key, "Sq")))
		}},
	{name: "unreadable keywords", kind: KindKeywordsBad,
		damage: func(t *testing.T, e *checkEnv) {
			mustWrite(t, filepath.Join(e.arch, "dovecot-keywords"), "zero $Work\n")
		}},
	{name: "wrong sizes in the name", kind: KindSize, fixed: true,
		damage: func(t *testing.T, e *checkEnv) {
			f, err := os.OpenFile(e.pick(t), os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteString("a line added by a filter\n")
			f.Close()
		},
		after: func(t *testing.T, e *checkEnv) {
			msgs := mustSync(t, e.inboxF)
			last := msgs[len(msgs)-1]
			size := int64(len(msg(0)) + 25) // all three bodies are as long
			if len(msgs) != 3 || last.UID != 4 || last.Size != size || last.VSize != size+5 || last.Key == e.key {
				t.Errorf("after repair: %+v", msgs)
			}
		}},
	{name: "old file in tmp", kind: KindOldTemp, fixed: true,
		damage: func(t *testing.T, e *checkEnv) {
			p := filepath.Join(e.arch, "tmp", "1600000000.M1P1.host")
			mustWrite(t, p, "half a message")
			makeOld(t, p, 37*time.Hour)
			mustWrite(t, filepath.Join(e.arch, "tmp", "recent"), "being written")
		},
		after: func(t *testing.T, e *checkEnv) {
			if names := filesIn(t, filepath.Join(e.arch, "tmp")); !slices.Equal(names, []string{"recent"}) {
				t.Errorf("tmp/ after repair: %v", names)
			}
		}},
	{name: "old file in the store's temp dir", kind: KindOldTemp, fixed: true,
		damage: func(t *testing.T, e *checkEnv) {
			p := filepath.Join(e.root, tmpDirName, "1600000000.M1P1.host")
			mustWrite(t, p, "half a message")
			makeOld(t, p, 40*time.Hour)
		}},
	{name: "old index temp file", kind: KindOldTemp, fixed: true,
		damage: func(t *testing.T, e *checkEnv) {
			p := filepath.Join(e.inbox, ".dovecot-uidlist.tmp12345")
			mustWrite(t, p, "3 V1 N1\n")
			makeOld(t, p, 2*time.Hour)
		}},
	{name: "dotlock temp file", kind: KindStaleLock, fixed: true,
		damage: func(t *testing.T, e *checkEnv) {
			p := filepath.Join(e.inbox, ".dovecot-uidlist.lock.4242.7")
			mustWrite(t, p, "4242:elsewhere")
			makeOld(t, p, 10*time.Minute)
		}},
	{name: "stale dotlock", kind: KindStaleLock, fixed: true, brokenLock: true,
		damage: func(t *testing.T, e *checkEnv) {
			p := filepath.Join(e.arch, "dovecot-uidlist.lock")
			mustWrite(t, p, "4242:elsewhere")
			makeOld(t, p, 5*time.Minute)
		}},
	{name: "no maildirfolder", kind: KindNoMarker, fixed: true,
		damage: func(t *testing.T, e *checkEnv) { os.Remove(filepath.Join(e.arch, "maildirfolder")) }},
	{name: "no new dir", kind: KindMissingDir, fixed: true,
		damage: func(t *testing.T, e *checkEnv) { os.Remove(filepath.Join(e.arch, "new")) }},
	{name: "folder name not modified UTF-7", kind: KindBadFolderName,
		damage: func(t *testing.T, e *checkEnv) {
			if err := makeMaildir(filepath.Join(e.inbox, ".&AGE-"), true); err != nil {
				t.Fatal(err)
			}
		}},
	{name: "user dir in upper case", kind: KindBadUserDir,
		damage: func(t *testing.T, e *checkEnv) {
			if err := makeMaildir(filepath.Join(e.root, "example.com", "Bob"), false); err != nil {
				t.Fatal(err)
			}
		}},
	{name: "uidlist without UIDVALIDITY", kind: KindUIDListBad, fixed: true,
		damage: func(t *testing.T, e *checkEnv) { mustWrite(t, filepath.Join(e.inbox, "dovecot-uidlist"), "3 V0 N4\n") },
		after: func(t *testing.T, e *checkEnv) {
			if n := len(mustSync(t, e.inboxF)); n != 3 {
				t.Errorf("%d messages after the rebuild", n)
			}
		}},
	{name: "UIDs not ascending", kind: KindUIDListBad, fixed: true,
		damage: func(t *testing.T, e *checkEnv) {
			p := filepath.Join(e.inbox, "dovecot-uidlist")
			data, _ := os.ReadFile(p)
			lines := strings.SplitAfter(string(data), "\n")
			lines[1], lines[2] = lines[2], lines[1]
			mustWrite(t, p, strings.Join(lines, ""))
		}},
	{name: "file listed twice", kind: KindUIDListDup, fixed: true,
		damage: func(t *testing.T, e *checkEnv) {
			e.pick(t)
			f, _ := os.OpenFile(filepath.Join(e.inbox, "dovecot-uidlist"), os.O_APPEND|os.O_WRONLY, 0)
			fmt.Fprintf(f, "9 :%s\n", e.key)
			f.Close()
		},
		after: func(t *testing.T, e *checkEnv) {
			if uid := e.picked(t).UID; uid > 3 {
				t.Errorf("the file listed twice has UID %d, want its first", uid)
			}
		}},
	{name: "torn append", kind: KindUIDListTorn, note: true, fixed: true,
		damage: func(t *testing.T, e *checkEnv) {
			f, _ := os.OpenFile(filepath.Join(e.inbox, "dovecot-uidlist"), os.O_APPEND|os.O_WRONLY, 0)
			f.WriteString("7 :17000")
			f.Close()
		}},
	{name: "version 1 uidlist", kind: KindUIDListV1, fixed: true,
		damage: func(t *testing.T, e *checkEnv) {
			p := filepath.Join(e.inbox, "dovecot-uidlist")
			data, _ := os.ReadFile(p)
			ul, err := parseUIDList(data)
			if err != nil {
				t.Fatal(err)
			}
			v1 := fmt.Sprintf("1 %d %d\n", ul.uidValidity, ul.nextUID)
			for _, r := range ul.recs {
				v1 += fmt.Sprintf("%d %s\n", r.uid, r.key)
			}
			mustWrite(t, p, v1)
		}},
	{name: "uidlist lost", kind: KindUIDListMissing, fixed: true,
		damage: func(t *testing.T, e *checkEnv) { os.Remove(filepath.Join(e.inbox, "dovecot-uidlist")) }},
}

// Each kind of damage is found, repaired when that is safe, and a
// repaired tree checks clean.
func TestCheckFindsAndRepairsDamage(t *testing.T) {
	for _, tc := range damageCases {
		t.Run(tc.name, func(t *testing.T) {
			e := newCheckEnv(t)
			tc.damage(t, e)
			rep := e.check(t, false)
			got := findingsOf(rep, tc.kind)
			if len(got) != 1 || len(rep.Findings) != 1 {
				t.Fatalf("want one %s finding, got: %s", tc.kind, dumpFindings(rep))
			}
			f := got[0]
			if f.Note != tc.note || f.Repaired != tc.brokenLock || f.User == "" && tc.kind != KindOldTemp && tc.kind != KindBadUserDir {
				t.Errorf("finding %+v", f)
			}
			if wantProblems := !tc.note && !tc.brokenLock; (rep.Problems() > 0) != wantProblems {
				t.Errorf("Problems() = %d", rep.Problems())
			}
			if tc.brokenLock {
				return // broken already: the next check is clean
			}
			rep = e.check(t, true)
			got = findingsOf(rep, tc.kind)
			if len(got) != 1 || got[0].Repaired != tc.fixed {
				t.Fatalf("repair: %s", dumpFindings(rep))
			}
			rep = e.check(t, false)
			if tc.fixed && len(rep.Findings) != 0 {
				t.Fatalf("after repair: %s", dumpFindings(rep))
			}
			if !tc.fixed && (len(findingsOf(rep, tc.kind)) != 1 || rep.Problems() != 1) {
				t.Fatalf("unrepairable damage after repair: %s", dumpFindings(rep))
			}
			if tc.after != nil {
				tc.after(t, e)
			}
		})
	}
}

// The standalone Check (what check-store runs) changes nothing without
// Repair, and repairs through a Store of its own with it.
func TestCheckStandalone(t *testing.T) {
	e := newCheckEnv(t)
	e.s.Close()
	damageCases[1].damage(t, e) // a cur/ file without UID
	old := filepath.Join(e.root, tmpDirName, "1600000000.M1P1.host")
	mustWrite(t, old, "half")
	makeOld(t, old, 40*time.Hour)
	stamp := func() []string {
		var out []string
		filepath.Walk(e.root, func(p string, fi os.FileInfo, err error) error {
			if err == nil && fi.Mode().IsRegular() { // a lock comes and goes: directories change
				out = append(out, fmt.Sprintf("%s %d %d", p, fi.Size(), fi.ModTime().UnixNano()))
			}
			return nil
		})
		return out
	}
	before := stamp()
	rep, err := Check(CheckOptions{Root: e.root, Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Problems() != 2 || len(findingsOf(rep, KindNoUID)) != 1 || len(findingsOf(rep, KindOldTemp)) != 1 {
		t.Fatalf("check: %s", dumpFindings(rep))
	}
	if after := stamp(); !slices.Equal(before, after) {
		t.Errorf("a check without repair changed the tree")
	}
	rep, err = Check(CheckOptions{Root: e.root, Logger: quietLog(), Repair: true})
	if err != nil || rep.Problems() != 0 || rep.Repaired() != 2 {
		t.Fatalf("repair: %v %s", err, dumpFindings(rep))
	}
	rep, err = Check(CheckOptions{Root: e.root, Logger: quietLog()})
	if err != nil || len(rep.Findings) != 0 {
		t.Fatalf("after repair: %v %s", err, dumpFindings(rep))
	}
	if _, err := Check(CheckOptions{Root: filepath.Join(e.root, "nowhere")}); err == nil {
		t.Error("a missing root checked without error")
	}
	if rep, err := Check(CheckOptions{Root: e.root, User: "Alice@Example.com", Logger: quietLog()}); err != nil || rep.Users != 1 {
		t.Errorf("one user: %v %+v", err, rep)
	}
	if _, err := Check(CheckOptions{Root: e.root, User: "carol@example.com"}); err == nil {
		t.Error("a user without maildir checked without error")
	}
}

// A check beside deliveries, syncs, flag changes, appends and expunges,
// both through the working Store (its locks) and through a second Store
// standing in for the check-store process, never reports a problem.
func TestCheckConcurrentWithDeliveries(t *testing.T) {
	root := t.TempDir()
	s := openStore(t, root, func(o *Options) { o.Logger = quietLog() })
	other := openStore(t, root, func(o *Options) { o.Logger = quietLog() })
	users := []string{"alice@example.com", "bob@example.com"}
	deliver(t, s, msg(0), users...)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	deadline := time.Now().Add(20 * time.Second)
	errs := make(chan error, 8)
	wg.Add(3)
	go func() {
		defer wg.Done()
		defer close(stop)
		for i := 0; i < 80 && time.Now().Before(deadline); i++ {
			if err := tryDeliver(s, msg(i), users...); err != nil {
				errs <- err
				return
			}
		}
	}()
	go func() { // a session: sync, flag, expunge
		defer wg.Done()
		f := mustFolder(t, mustUser(t, s, users[0]), Inbox)
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			msgs, err := f.Sync()
			if err == nil && len(msgs) > 2 {
				_, err = f.SetFlags([]UID{msgs[n%len(msgs)].UID}, FlagsAdd, []Flag{FlagSeen, "$Later"})
				if err == nil && n%5 == 0 {
					_, err = f.Expunge([]UID{msgs[0].UID})
				}
			}
			if err != nil {
				errs <- err
				return
			}
		}
	}()
	go func() { // appends into a sub-folder
		defer wg.Done()
		f := mustFolder(t, mustUser(t, s, users[1]), "Archive")
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := f.Append(strings.NewReader(msg(i)), []Flag{FlagFlagged, "$Work"}, time.Time{}); err != nil {
				errs <- err
				return
			}
		}
	}()
	wg.Add(1)
	go func() { // folders come and go under the check
		defer wg.Done()
		u := mustUser(t, s, users[1])
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			name, renamed := fmt.Sprintf("Tmp%d", i), fmt.Sprintf("Gone%d", i)
			err := u.CreateFolder(name, UseNone)
			if err == nil {
				err = u.RenameFolder(name, renamed)
			}
			if err == nil {
				err = u.DeleteFolder(renamed)
			}
			if err != nil {
				errs <- err
				return
			}
		}
	}()
	checks := 0
	for done := false; !done && time.Now().Before(deadline.Add(time.Second)); checks++ {
		select {
		case <-stop:
			done = true
		default:
		}
		for _, st := range []*Store{s, other} {
			rep, err := st.Check(CheckOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Problems() != 0 {
				t.Fatalf("check %d beside deliveries: %s", checks, dumpFindings(rep))
			}
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if checks < 2 {
		t.Errorf("only %d checks ran beside the deliveries", checks)
	}
	t.Logf("%d checks (each twice) beside the deliveries", checks)
	// Once everything is synced, only the notes of expunges remain.
	mustSync(t, mustFolder(t, mustUser(t, s, users[1]), Inbox))
	rep, err := s.Check(CheckOptions{Repair: true})
	if err != nil || rep.Problems() != 0 {
		t.Fatalf("final repair: %v %s", err, dumpFindings(rep))
	}
	if rep, _ := s.Check(CheckOptions{}); len(rep.Findings) != 0 {
		t.Fatalf("final check: %s", dumpFindings(rep))
	}
}

// TestHelperCheck is not a test: TestCheckFromAnotherProcess runs the test
// binary as the check-store process, checking in a loop until told to stop.
func TestHelperCheck(t *testing.T) {
	root := os.Getenv("MAILSTORE_CHECK_ROOT")
	if root == "" {
		t.Skip("helper process only")
	}
	stop := filepath.Join(root, "..", "stop")
	deadline := time.Now().Add(30 * time.Second)
	n := 0
	for ; time.Now().Before(deadline); n++ {
		if _, err := os.Stat(stop); err == nil && n > 0 {
			break
		}
		rep, err := Check(CheckOptions{Root: root, Logger: quietLog()})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Problems() != 0 {
			t.Fatalf("check %d: %s", n, dumpFindings(rep))
		}
	}
	fmt.Printf("checks: %d\n", n)
}

// check-store runs as its own process beside a server that delivers,
// syncs, flags, appends and expunges: it must report no problem.
func TestCheckFromAnotherProcess(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "mail")
	s := openStore(t, root, func(o *Options) { o.Logger = quietLog() })
	users := []string{"alice@example.com", "bob@example.com"}
	deliver(t, s, msg(0), users...)
	helper := exec.Command(os.Args[0], "-test.run=^TestHelperCheck$", "-test.count=1", "-test.v")
	helper.Env = append(os.Environ(), "MAILSTORE_CHECK_ROOT="+root)
	var out bytes.Buffer
	helper.Stdout, helper.Stderr = &out, &out
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	inbox := mustFolder(t, mustUser(t, s, users[0]), Inbox)
	archive := mustFolder(t, mustUser(t, s, users[1]), "Archive")
	for i := 0; i < 80; i++ {
		deliver(t, s, msg(i), users...)
		if _, err := archive.Append(strings.NewReader(msg(i)), []Flag{FlagSeen, "$Work"}, time.Time{}); err != nil {
			t.Fatal(err)
		}
		msgs := mustSync(t, inbox)
		if _, err := inbox.SetFlags([]UID{msgs[i%len(msgs)].UID}, FlagsAdd, []Flag{FlagAnswered}); err != nil {
			t.Fatal(err)
		}
		if i%4 == 0 {
			if _, err := inbox.Expunge([]UID{msgs[0].UID}); err != nil {
				t.Fatal(err)
			}
		}
	}
	mustWrite(t, filepath.Join(base, "stop"), "")
	err := helper.Wait()
	m := regexp.MustCompile(`checks: (\d+)`).FindStringSubmatch(out.String())
	if err != nil || m == nil {
		t.Fatalf("check process: %v\n%s", err, out.String())
	}
	n, _ := strconv.Atoi(m[1])
	if n < 2 {
		t.Errorf("only %d checks ran beside the server", n)
	}
	t.Logf("%d checks from another process", n)
}

// A tree Dovecot wrote (flags, a keyword, a sub-folder) checks clean:
// what Dovecot does is never reported as damage.
func TestCheckDovecotTree(t *testing.T) {
	root := t.TempDir()
	dc := newDovecot(t, filepath.Join(root, "x.test", "dd"))
	body := "Subject: from Dovecot\r\n\r\nhello\r\n"
	dc.run("CREATE Work.2026",
		fmt.Sprintf("APPEND INBOX (\\Seen $Label1) {%d+}\r\n%s", len(body), body),
		fmt.Sprintf("APPEND Work.2026 (\\Flagged) {%d+}\r\n%s", len(body), body),
		fmt.Sprintf("APPEND INBOX {%d+}\r\n%s", len(body), body),
		"SELECT INBOX", "STORE 2 +FLAGS (\\Answered)")
	rep, err := Check(CheckOptions{Root: root, Logger: quietLog()})
	if err != nil || rep.Messages != 3 || len(rep.Findings) != 0 {
		t.Fatalf("Dovecot's tree: %v, %d messages %s", err, rep.Messages, dumpFindings(rep))
	}
}

// Whatever dovecot-uidlist holds, a repair leaves a folder that checks
// clean and keeps both messages.
func FuzzCheckRepairsUIDList(f *testing.F) {
	for _, seed := range []string{
		"3 V1700000000 N3 G0123456789abcdef0123456789abcdef\n1 :1.a.host\n2 :2.b.host\n",
		"3 V1 N1\n1 :1.a.host\n1 :2.b.host\n",
		"3 V5 N9\n4 :1.a.host\n5 :gone\n6 :1.a.host\n7 :2.b",
		"1 5 3\n1 1.a.host\n2 2.b.host\n",
		"3 V0 N1\n",
		"",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, uidlist string) {
		root := t.TempDir()
		dir := filepath.Join(root, "example.com", "fuzz")
		if err := makeMaildir(dir, false); err != nil {
			t.Fatal(err)
		}
		mustWrite(t, filepath.Join(dir, "cur", "1.a.host:2,S"), "a\n")
		mustWrite(t, filepath.Join(dir, "cur", "2.b.host:2,"), "b\n")
		mustWrite(t, filepath.Join(dir, "dovecot-uidlist"), uidlist)
		if _, err := Check(CheckOptions{Root: root, Repair: true, Logger: quietLog()}); err != nil {
			t.Fatal(err)
		}
		rep, err := Check(CheckOptions{Root: root, Logger: quietLog()})
		if err != nil || len(rep.Findings) != 0 || rep.Messages != 2 {
			t.Fatalf("after repair of %q: %v %d messages %s", uidlist, err, rep.Messages, dumpFindings(rep))
		}
	})
}
