package mailstore

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func folderNamesOf(t *testing.T, u *User) []string {
	t.Helper()
	fs, err := u.Folders()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range fs {
		n := f.Name
		if f.NoSelect {
			n += "(noselect)"
		}
		out = append(out, n)
	}
	return out
}

func TestDefaultFoldersAndSpecialUse(t *testing.T) {
	root := t.TempDir()
	s := openStore(t, root)
	u := mustUser(t, s, "New@Example.com")
	if u.Name() != "new@example.com" {
		t.Fatalf("name %q", u.Name())
	}
	fs, err := u.Folders()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]SpecialUse{"INBOX": UseNone, "Sent": UseSent, "Drafts": UseDrafts, "Trash": UseTrash, "Junk": UseJunk, "Archive": UseArchive}
	if len(fs) != len(want) || fs[0].Name != Inbox {
		t.Fatalf("folders %+v", fs)
	}
	for _, f := range fs {
		if use, ok := want[f.Name]; !ok || use != f.SpecialUse || !f.Subscribed {
			t.Errorf("folder %+v", f)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "example.com", "new", ".Sent", "maildirfolder")); err != nil {
		t.Fatal(err)
	}
	// A deleted default folder is not recreated by the next process.
	if err := u.DeleteFolder("Junk"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2 := openStore(t, root)
	names := folderNamesOf(t, mustUser(t, s2, "new@example.com"))
	if slices.Contains(names, "Junk") {
		t.Fatalf("Junk came back: %v", names)
	}
}

func TestFolderCreateRenameDelete(t *testing.T) {
	root := t.TempDir()
	s := openStore(t, root)
	u := mustUser(t, s, "f@x.test")
	for _, n := range []string{"Work/2026/Q1", "Privat", "Ärger & Öl", "日本語"} {
		if err := u.CreateFolder(n, UseNone); err != nil {
			t.Fatalf("create %q: %v", n, err)
		}
	}
	if err := u.CreateFolder("Privat", UseNone); !errors.Is(err, ErrFolderExists) {
		t.Fatalf("create twice: %v", err)
	}
	if err := u.CreateFolder("inbox", UseNone); !errors.Is(err, ErrFolderExists) {
		t.Fatalf("create INBOX: %v", err)
	}
	dir := filepath.Join(root, "x.test", "f")
	for _, d := range []string{".&AMQ-rger &- &ANY-l", ".&ZeVnLIqe-", ".Work.2026.Q1", ".Work.2026"} {
		if _, err := os.Stat(filepath.Join(dir, d)); err != nil {
			t.Errorf("missing %s: %v", d, err)
		}
	}
	f := mustFolder(t, u, "Work/2026")
	uid, err := f.Append(strings.NewReader(msg(1)), []Flag{FlagSeen}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if err := u.RenameFolder("Work", "Job"); err != nil {
		t.Fatal(err)
	}
	names := folderNamesOf(t, u)
	if slices.Contains(names, "Work/2026") || !slices.Contains(names, "Job/2026/Q1") || !slices.Contains(names, "Job/2026") {
		t.Fatalf("after rename: %v", names)
	}
	if _, err := f.Sync(); !errors.Is(err, ErrNoSuchFolder) {
		t.Fatalf("old handle after rename: %v", err)
	}
	msgs := mustSync(t, mustFolder(t, u, "Job/2026"))
	if len(msgs) != 1 || msgs[0].UID != uid || flagsString(msgs[0].Flags) != `\Seen` {
		t.Fatalf("renamed folder lost its message: %+v", msgs)
	}
	if err := u.RenameFolder("Job", "Job/Sub"); !errors.Is(err, ErrNotPermitted) {
		t.Fatalf("rename into own child: %v", err)
	}
	if err := u.RenameFolder("Nope", "Other"); !errors.Is(err, ErrNoSuchFolder) {
		t.Fatalf("rename missing: %v", err)
	}
	if err := u.RenameFolder("Privat", "Job"); !errors.Is(err, ErrFolderExists) {
		t.Fatalf("rename onto existing: %v", err)
	}
	// Deleting a parent keeps its children; the parent lists as NoSelect.
	if err := u.DeleteFolder("Job/2026"); err != nil {
		t.Fatal(err)
	}
	names = folderNamesOf(t, u)
	if !slices.Contains(names, "Job/2026(noselect)") || !slices.Contains(names, "Job/2026/Q1") {
		t.Fatalf("after delete: %v", names)
	}
	if err := u.DeleteFolder("INBOX"); !errors.Is(err, ErrNotPermitted) {
		t.Fatalf("delete INBOX: %v", err)
	}
	if err := u.DeleteFolder("Job/2026"); !errors.Is(err, ErrNoSuchFolder) {
		t.Fatalf("delete noselect: %v", err)
	}
	if _, err := u.Folder("Job/2026"); !errors.Is(err, ErrNoSuchFolder) {
		t.Fatalf("open deleted: %v", err)
	}
	for _, e := range filesIn(t, dir) {
		if strings.HasPrefix(e, "..") {
			t.Fatalf("deleted folder left behind: %s", e)
		}
	}
}

func TestRenameInbox(t *testing.T) {
	s := openStore(t, t.TempDir())
	u := mustUser(t, s, "r@x.test")
	for i := 0; i < 3; i++ {
		deliver(t, s, msg(i), "r@x.test")
	}
	inbox := mustFolder(t, u, Inbox)
	msgs := mustSync(t, inbox)
	inbox.SetFlags([]UID{msgs[0].UID}, FlagsAdd, []Flag{FlagSeen})
	deliver(t, s, msg(9), "r@x.test") // still in new/
	if err := u.CreateFolder("INBOX/Child", UseNone); err != nil {
		t.Fatal(err)
	}
	if err := u.RenameFolder("INBOX", "Old Mail"); err != nil {
		t.Fatal(err)
	}
	if n := len(mustSync(t, inbox)); n != 0 {
		t.Fatalf("INBOX still has %d messages", n)
	}
	moved := mustSync(t, mustFolder(t, u, "Old Mail"))
	if len(moved) != 4 || flagsString(moved[0].Flags) != `\Seen` {
		t.Fatalf("moved: %+v", moved)
	}
	if !slices.Contains(folderNamesOf(t, u), "INBOX/Child") {
		t.Fatal("INBOX child was moved")
	}
}

func TestHostileNames(t *testing.T) {
	root := t.TempDir()
	s := openStore(t, root)
	u := mustUser(t, s, "h@x.test")
	before := treeFiles(t, root)
	bad := []string{
		"", "/", "a/", "/a", "a//b", "..", "../x", "a/../b", ".", "./a", "a/.", ".hidden",
		"a.b", "a\x00b", "a\nb", "a\\b", "~a", "a~", " lead", "trail ", "a/ b", "\xff\xfe",
		"a\x7fb", "a\u0085b", strings.Repeat("x", 256), strings.Repeat("x", 255), strings.Repeat("é", 128),
		"../../../../etc/passwd", "INBOX/../..",
	}
	for _, n := range bad {
		if err := u.CreateFolder(n, UseNone); !errors.Is(err, ErrBadFolderName) {
			t.Errorf("CreateFolder(%q): %v", n, err)
		}
		if _, err := u.Folder(n); !errors.Is(err, ErrBadFolderName) {
			t.Errorf("Folder(%q): %v", n, err)
		}
		if err := u.RenameFolder("Sent", n); !errors.Is(err, ErrBadFolderName) {
			t.Errorf("RenameFolder(Sent, %q): %v", n, err)
		}
		if err := u.DeleteFolder(n); !errors.Is(err, ErrBadFolderName) {
			t.Errorf("DeleteFolder(%q): %v", n, err)
		}
		if err := u.SetSubscribed(n, true); !errors.Is(err, ErrBadFolderName) {
			t.Errorf("SetSubscribed(%q): %v", n, err)
		}
	}
	if after := treeFiles(t, root); !slices.Equal(before, after) {
		t.Fatalf("hostile names changed the tree:\n%v\n%v", before, after)
	}
	// Long but legal, and Unicode, stay inside the user's directory.
	for _, n := range []string{strings.Repeat("x", 254), strings.Repeat("日", 60), "a b/c-d_e+f=g'h", "Ünïcødé/⌘"} {
		if err := u.CreateFolder(n, UseNone); err != nil {
			t.Errorf("CreateFolder(%q): %v", n, err)
		}
	}
	userDir := filepath.Join(root, "x.test", "h")
	for _, p := range treeFiles(t, root) {
		full := filepath.Join(root, p)
		if !strings.HasPrefix(full, userDir) && !strings.HasPrefix(full, filepath.Join(root, tmpDirName)) &&
			full != root && full != filepath.Join(root, "x.test") {
			t.Errorf("file outside the user's dir: %s", p)
		}
	}
	for _, user := range []string{"", "@x", "a@", "../x@y", "a/b@c", "a@b/c", "a@..", ".a@b", "a@.b", "a\x00@b", "a@b\\c", "noat"} {
		if _, err := s.User(user); !errors.Is(err, ErrBadUser) {
			t.Errorf("User(%q): %v", user, err)
		}
	}
}

func TestSubscriptions(t *testing.T) {
	root := t.TempDir()
	s := openStore(t, root)
	u := mustUser(t, s, "s@x.test")
	if err := u.SetSubscribed("Sent", false); err != nil {
		t.Fatal(err)
	}
	if err := u.SetSubscribed("Not/Yet/Created", true); err != nil {
		t.Fatal(err)
	}
	if err := u.SetSubscribed("Ärger", true); err != nil {
		t.Fatal(err)
	}
	subs, err := u.Subscriptions()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"Archive", "Drafts", "INBOX", "Junk", "Not/Yet/Created", "Trash", "Ärger"}
	if !slices.Equal(subs, want) {
		t.Fatalf("subscriptions %v", subs)
	}
	data, _ := os.ReadFile(filepath.Join(root, "x.test", "s", "subscriptions"))
	if !strings.HasPrefix(string(data), "V\t2\n\n") || !strings.Contains(string(data), "\nNot\tYet\tCreated\n") || !strings.Contains(string(data), "&AMQ-rger\n") {
		t.Fatalf("file %q", data)
	}
}
