package mailstore

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// unnamedFaultFS is faultFS with unnamed (O_TMPFILE) delivery files: the
// same injected failures on the new path.
type unnamedFaultFS struct {
	faultFS
	unsupported atomic.Bool // CreateUnnamed fails as without O_TMPFILE
	unnamed     atomic.Int32
}

func (fs *unnamedFaultFS) CreateUnnamed(dir string) (File, error) {
	fs.step("create")
	if fs.unsupported.Load() {
		return nil, &os.PathError{Op: "open", Path: dir, Err: syscall.EOPNOTSUPP}
	}
	if fs.failCreate.Load() {
		return nil, syscall.EACCES
	}
	f, err := osFS{}.CreateUnnamed(dir)
	if err != nil {
		return nil, err
	}
	fs.unnamed.Add(1)
	return faultFile{f.(*os.File), &fs.faultFS}, nil
}

func (fs *unnamedFaultFS) LinkUnnamed(f File, newname string) error {
	fs.step("link")
	if n := fs.links.Add(1); n == fs.failLinkAt.Load() {
		return syscall.ENOSPC
	}
	return osFS{}.LinkUnnamed(f, newname)
}

// openUnnamed opens a store on fs and skips if the temp dir's file system
// has no O_TMPFILE (the fallback is tested on its own).
func openUnnamed(t *testing.T, root string, fs *unnamedFaultFS) *Store {
	t.Helper()
	s := openStore(t, root, func(o *Options) { o.FS = fs })
	if s.unnamed == nil {
		t.Skipf("no O_TMPFILE under %s", root)
	}
	return s
}

func TestUnnamedDeliveryAllOrNothing(t *testing.T) {
	root := t.TempDir()
	fs := &unnamedFaultFS{}
	s := openUnnamed(t, root, fs)
	users := []string{"a@x.test", "b@x.test", "c@x.test"}
	for _, u := range users {
		mustUser(t, s, u)
	}
	visible := func() []string {
		var out []string
		for _, u := range []string{"a", "b", "c"} {
			for _, sub := range []string{"new", "cur"} {
				out = append(out, filesIn(t, filepath.Join(root, "x.test", u, sub))...)
			}
		}
		return out
	}
	tmp := filepath.Join(root, tmpDirName)
	// While being written the message has no name anywhere.
	d, err := s.BeginDelivery()
	if err != nil {
		t.Fatal(err)
	}
	d.Write(bytes.Repeat([]byte("x"), 100<<10))
	if names := filesIn(t, tmp); len(names) != 0 {
		t.Fatalf("named temp files on the unnamed path: %v", names)
	}
	// Second of three links fails: the one made is removed.
	fs.links.Store(0)
	fs.failLinkAt.Store(2)
	if err := d.Commit(t.Context(), users); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("commit with failing link: %v", err)
	}
	fs.failLinkAt.Store(0)
	if v := visible(); len(v) != 0 {
		t.Fatalf("visible after failed commit: %v", v)
	}
	failWriteAndSync(t, s, &fs.faultFS, users, func() int { return len(visible()) })
	// A real error creating the file is returned, not a fallback.
	fs.failCreate.Store(true)
	if _, err := s.BeginDelivery(); !errors.Is(err, syscall.EACCES) {
		t.Fatalf("create failure: %v", err)
	}
	fs.failCreate.Store(false)
	if names := filesIn(t, tmp); len(names) != 0 {
		t.Fatalf("temp files left: %v", names)
	}
	before := fs.unnamed.Load()
	var steps []string
	fs.onStep = func(step string) { steps = append(steps, step) }
	deliver(t, s, msg(1), users...)
	fs.onStep = nil
	if fs.unnamed.Load() != before+1 {
		t.Fatal("delivery did not use an unnamed file")
	}
	// Without a journal the inode is fsynced again once linked (its link
	// count was 0 on disk and nothing else writes it).
	want := "create write sync link link link"
	if s.linkSync {
		want += " sync"
	}
	if got := strings.Join(steps, " "); got != want {
		t.Fatalf("steps %q, want %q", got, want)
	}
	// One inode, linked once per recipient.
	var ino uint64
	for _, u := range []string{"a", "b", "c"} {
		names := filesIn(t, filepath.Join(root, "x.test", u, "new"))
		if len(names) != 1 {
			t.Fatalf("%s: %v", u, names)
		}
		st, err := os.Stat(filepath.Join(root, "x.test", u, "new", names[0]))
		if err != nil {
			t.Fatal(err)
		}
		sys := st.Sys().(*syscall.Stat_t)
		if sys.Nlink != 3 || (ino != 0 && sys.Ino != ino) {
			t.Fatalf("%s: inode %d with %d links, want one inode with 3", u, sys.Ino, sys.Nlink)
		}
		ino = sys.Ino
	}
	if v := mustSync(t, mustFolder(t, mustUser(t, s, "b@x.test"), Inbox)); len(v) != 1 || v[0].Size != int64(len(msg(1))) {
		t.Fatalf("b's INBOX: %+v", v)
	}
}

// Without O_TMPFILE (probe at Open, or a later EOPNOTSUPP) deliveries use
// named temp files, through the FS's Create and Link.
func TestUnnamedFallback(t *testing.T) {
	root := t.TempDir()
	fs := &unnamedFaultFS{}
	fs.unsupported.Store(true)
	s := openStore(t, root, func(o *Options) { o.FS = fs })
	if s.unnamed != nil {
		t.Fatal("unnamed files used though the probe failed")
	}
	fs.links.Store(0)
	deliver(t, s, msg(1), "a@x.test")
	if fs.links.Load() != 1 || fs.unnamed.Load() != 0 {
		t.Fatalf("links %d unnamed %d: want the named path", fs.links.Load(), fs.unnamed.Load())
	}

	root2 := t.TempDir()
	fs2 := &unnamedFaultFS{}
	s2 := openUnnamed(t, root2, fs2)
	fs2.unsupported.Store(true)
	fs2.links.Store(0)
	deliver(t, s2, msg(2), "a@x.test")
	if fs2.links.Load() != 1 || fs2.unnamed.Load() != 1 { // 1: the probe's
		t.Fatalf("links %d unnamed %d: want the named path", fs2.links.Load(), fs2.unnamed.Load())
	}
	for _, st := range []*Store{s, s2} {
		msgs := mustSync(t, mustFolder(t, mustUser(t, st, "a@x.test"), Inbox))
		if len(msgs) != 1 {
			t.Fatalf("%d messages", len(msgs))
		}
		if names := filesIn(t, filepath.Join(st.root, tmpDirName)); len(names) != 0 {
			t.Fatalf("temp files left: %v", names)
		}
	}
}

// crashEnv names the step a child process of TestUnnamedDeliveryCrash
// kills itself at, and its store root.
const crashEnv = "MAILSTORE_TEST_CRASH_AT"

// A process killed at any step of an unnamed delivery leaves no temp file
// and no visible partial message: each recipient has nothing or the whole
// message.
func TestUnnamedDeliveryCrash(t *testing.T) {
	body := crashBody()
	if at := os.Getenv(crashEnv); at != "" {
		crashChild(t, at, body)
		return
	}
	// 200 KB goes through several writes of the 32 KiB buffer.
	steps := []string{"create#1", "write#1", "write#4", "sync#1", "link#1", "link#2", "none"}
	if linkNeedsInodeSync(t.TempDir()) {
		steps = append(steps, "sync#2")
	}
	for _, step := range steps {
		t.Run(step, func(t *testing.T) {
			root := t.TempDir()
			s := openUnnamed(t, root, &unnamedFaultFS{})
			mustUser(t, s, "a@x.test")
			mustUser(t, s, "b@x.test")
			s.Close()
			cmd := exec.Command(os.Args[0], "-test.run=^TestUnnamedDeliveryCrash$", "-test.count=1")
			cmd.Env = append(os.Environ(), crashEnv+"="+step+"@"+root)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			killed := errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGKILL
			if step == "none" && err != nil || step != "none" && !killed {
				t.Fatalf("child: %v\n%s", err, out)
			}
			if names := filesIn(t, filepath.Join(root, tmpDirName)); len(names) != 0 {
				t.Fatalf("temp files left: %v", names)
			}
			seen := 0
			for _, u := range []string{"a", "b"} {
				dir := filepath.Join(root, "x.test", u, "new")
				for _, n := range filesIn(t, dir) {
					data, err := os.ReadFile(filepath.Join(dir, n))
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(data, body) {
						t.Fatalf("%s has a partial message: %d of %d octets", u, len(data), len(body))
					}
					seen++
				}
			}
			want := map[string]int{"link#2": 1, "sync#2": 2, "none": 2}[step]
			if seen != want {
				t.Fatalf("%d copies visible, want %d", seen, want)
			}
		})
	}
}

func crashBody() []byte {
	var b bytes.Buffer
	b.WriteString("Subject: crash\r\n\r\n")
	for b.Len() < 200<<10 {
		fmt.Fprintf(&b, "line %d of a long message\r\n", b.Len())
	}
	return b.Bytes()
}

// crashChild delivers body to a and b, killing the process at step
// ("name#n": before the n-th operation of that name).
func crashChild(t *testing.T, at string, body []byte) {
	step, root, _ := strings.Cut(at, "@")
	fs := &unnamedFaultFS{}
	s := openUnnamed(t, root, fs)
	counts := map[string]int{}
	fs.onStep = func(name string) {
		counts[name]++
		if fmt.Sprintf("%s#%d", name, counts[name]) == step {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal arrives
		}
	}
	d, err := s.BeginDelivery()
	if err != nil {
		t.Fatal(err)
	}
	for rest := body; len(rest) > 0; { // in pieces, as smtpd writes
		n := min(len(rest), 10<<10)
		if _, err := d.Write(rest[:n]); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
	}
	if err := d.Commit(t.Context(), []string{"a@x.test", "b@x.test"}); err != nil {
		t.Fatal(err)
	}
}

// With the real file system, spare unnamed files are opened ahead; the
// deliveries that use them are whole, and Close closes the unused ones.
func TestFilePool(t *testing.T) {
	openFDs := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Skip("no /proc/self/fd")
		}
		return len(ents)
	}
	before := openFDs()
	s, err := Open(Options{Root: t.TempDir(), Hostname: "test.example"})
	if err != nil {
		t.Fatal(err)
	}
	if s.unnamed == nil {
		s.Close()
		t.Skip("no O_TMPFILE here")
	}
	for i := range 20 {
		deliver(t, s, msg(i), "p@x.test", "q@x.test")
	}
	for _, u := range []string{"p@x.test", "q@x.test"} {
		f := mustFolder(t, mustUser(t, s, u), Inbox)
		msgs := mustSync(t, f)
		if len(msgs) != 20 {
			t.Fatalf("%s: %d messages", u, len(msgs))
		}
		for i, n := range subjectNumbers(t, f, msgs) {
			if n != i {
				t.Fatalf("%s: UID %d holds message %d", u, msgs[i].UID, n)
			}
		}
	}
	if len(s.pool.files) == 0 {
		time.Sleep(100 * time.Millisecond)
	}
	if len(s.pool.files) == 0 {
		t.Error("no spare files opened")
	}
	s.Close()
	if after := openFDs(); after > before {
		t.Fatalf("%d descriptors open after Close, %d before", after, before)
	}
}

// linkNeedsInodeSync agrees with /proc/fs/jbd2, which lists the devices
// whose ext4 has a journal, and stays on for file systems it does not know.
func TestLinkNeedsInodeSync(t *testing.T) {
	dir := t.TempDir()
	var fs syscall.Statfs_t
	if err := syscall.Statfs(dir, &fs); err != nil {
		t.Fatal(err)
	}
	got := linkNeedsInodeSync(dir)
	switch fs.Type {
	case 0xEF53: // ext2/3/4
		name, ok := blockDevName(dir)
		if !ok {
			t.Skip("no /sys/dev/block")
		}
		_, err := os.Stat("/proc/fs/jbd2/" + name + "-8")
		if journaled := err == nil; got == journaled {
			t.Fatalf("%s (%s): journal %v, extra fsync %v", dir, name, journaled, got)
		}
	case 0x58465342: // XFS
		if got {
			t.Fatal("XFS gets the extra fsync")
		}
	default:
		if !got {
			t.Fatalf("file system %#x not known, but no extra fsync", fs.Type)
		}
	}
	if shm := "/dev/shm"; isDir(shm) && !linkNeedsInodeSync(shm) {
		t.Fatal("tmpfs: no extra fsync")
	}
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}
