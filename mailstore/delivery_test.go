package mailstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// faultFS injects failures into delivery writes and links.
type faultFS struct {
	failCreate, failWrite, failSync atomic.Bool
	failLinkAt                      atomic.Int32 // fail the n-th link (1-based), 0: never
	links                           atomic.Int32
	onStep                          func(step string) // called before each operation (crash tests)
}

func (fs *faultFS) step(name string) {
	if fs.onStep != nil {
		fs.onStep(name)
	}
}

type faultFile struct {
	*os.File
	fs *faultFS
}

func (f faultFile) Write(p []byte) (int, error) {
	f.fs.step("write")
	if f.fs.failWrite.Load() {
		return 0, syscall.ENOSPC
	}
	return f.File.Write(p)
}

func (f faultFile) Sync() error {
	f.fs.step("sync")
	if f.fs.failSync.Load() {
		return syscall.EIO
	}
	return f.File.Sync()
}

func (fs *faultFS) Create(path string) (File, error) {
	fs.step("create")
	if fs.failCreate.Load() {
		return nil, syscall.EACCES
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	return faultFile{f, fs}, nil
}

func (fs *faultFS) Link(oldname, newname string) error {
	fs.step("link")
	if n := fs.links.Add(1); n == fs.failLinkAt.Load() {
		return syscall.ENOSPC
	}
	return os.Link(oldname, newname)
}

// failWriteAndSync delivers with writes, then fsyncs, failing: the commit
// fails and visible() (files in the recipients' maildirs) stays 0.
func failWriteAndSync(t *testing.T, s *Store, fs *faultFS, users []string, visible func() int) {
	t.Helper()
	for name, set := range map[string]*atomic.Bool{"write": &fs.failWrite, "sync": &fs.failSync} {
		set.Store(true)
		err := tryDeliver(s, strings.Repeat("x", 100<<10), users...)
		set.Store(false)
		if err == nil {
			t.Fatalf("%s failure: commit succeeded", name)
		}
		if n := visible(); n != 0 {
			t.Fatalf("%s failure: %d files visible", name, n)
		}
	}
}

func TestMultiRecipientHardLinks(t *testing.T) {
	root := t.TempDir()
	s := openStore(t, root)
	users := []string{"a@x.test", "b@x.test", "c@y.test", "A@X.test"}
	deliver(t, s, msg(1), users...)
	var inos []uint64
	for _, u := range []string{"a@x.test", "b@x.test", "c@y.test"} {
		msgs := mustSync(t, mustFolder(t, mustUser(t, s, u), Inbox))
		if len(msgs) != 1 {
			t.Fatalf("%s has %d messages (duplicate recipient must get one copy)", u, len(msgs))
		}
		local, domain, _ := strings.Cut(u, "@")
		st, err := os.Stat(filepath.Join(root, domain, local, "cur", fileName(msgs[0].Key, "")))
		if err != nil {
			t.Fatal(err)
		}
		inos = append(inos, st.Sys().(*syscall.Stat_t).Ino)
		if n := st.Sys().(*syscall.Stat_t).Nlink; n != 3 {
			t.Fatalf("link count %d, want 3", n)
		}
	}
	if inos[0] != inos[1] || inos[1] != inos[2] {
		t.Fatalf("not hard links: inodes %v", inos)
	}
	if tmp := filesIn(t, filepath.Join(root, tmpDirName)); len(tmp) != 0 {
		t.Fatalf("temp left: %v", tmp)
	}
}

func TestDeliveryAllOrNothing(t *testing.T) {
	root := t.TempDir()
	fs := &faultFS{}
	s := openStore(t, root, func(o *Options) { o.FS = fs })
	users := []string{"a@x.test", "b@x.test", "c@x.test"}
	for _, u := range users {
		mustUser(t, s, u)
	}
	countAll := func() int {
		n := 0
		for _, u := range []string{"a", "b", "c"} {
			for _, sub := range []string{"new", "cur"} {
				n += len(filesIn(t, filepath.Join(root, "x.test", u, sub)))
			}
		}
		return n
	}
	// Third link fails: the two made are removed.
	fs.failLinkAt.Store(3)
	err := tryDeliver(s, msg(1), users...)
	if err == nil || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("commit with failing link: %v", err)
	}
	if n := countAll(); n != 0 {
		t.Fatalf("%d files visible after failed commit", n)
	}
	fs.failLinkAt.Store(0)
	// Disk full while writing, fsync failing, create failing.
	failWriteAndSync(t, s, fs, users, countAll)
	fs.failCreate.Store(true)
	if _, err := s.BeginDelivery(); !errors.Is(err, syscall.EACCES) {
		t.Fatalf("create failure: %v", err)
	}
	fs.failCreate.Store(false)
	if tmp := filesIn(t, filepath.Join(root, tmpDirName)); len(tmp) != 0 {
		t.Fatalf("temp left: %v", tmp)
	}
	// And a good delivery still works afterwards.
	deliver(t, s, msg(2), users...)
	if n := countAll(); n != 3 {
		t.Fatalf("%d files after good delivery", n)
	}
	// Abort leaves nothing; Commit after Abort fails.
	d, _ := s.BeginDelivery()
	d.Write([]byte("x"))
	d.Abort()
	if err := d.Commit(context.Background(), users); err == nil {
		t.Fatal("commit after abort succeeded")
	}
	if tmp := filesIn(t, filepath.Join(root, tmpDirName)); len(tmp) != 0 {
		t.Fatalf("temp left after abort: %v", tmp)
	}
}

func TestQuota(t *testing.T) {
	root := t.TempDir()
	quota := int64(1000)
	s := openStore(t, root, func(o *Options) {
		o.Quota = func(u string) int64 {
			if u == "q@x.test" {
				return quota
			}
			return 0
		}
		o.QuotaGrace = 0.5
	})
	body := strings.Repeat("y", 400)
	deliver(t, s, body, "q@x.test")
	deliver(t, s, body, "q@x.test") // 800 bytes
	if err := s.CheckQuota("q@x.test", 100); err != nil {
		t.Fatalf("under quota: %v", err)
	}
	if err := s.CheckQuota("q@x.test", 300); !errors.Is(err, ErrQuota) {
		t.Fatalf("would exceed: %v", err)
	}
	// Under quota before, within grace after: accepted (1200 <= 1500).
	deliver(t, s, body, "q@x.test")
	// Now over quota: refused, for every recipient of the delivery.
	err := tryDeliver(s, "small", "q@x.test", "other@x.test")
	if !errors.Is(err, ErrQuota) {
		t.Fatalf("over quota: %v", err)
	}
	if msgs := mustSync(t, mustFolder(t, mustUser(t, s, "other@x.test"), Inbox)); len(msgs) != 0 {
		t.Fatal("partial delivery to the other recipient")
	}
	u := mustUser(t, s, "q@x.test")
	if _, err := mustFolder(t, u, "Sent").Append(strings.NewReader("x"), nil, time.Time{}); !errors.Is(err, ErrQuota) {
		t.Fatalf("append over quota: %v", err)
	}
	// Over quota, mail can still be moved (to Trash), not copied.
	inboxF := mustFolder(t, u, Inbox)
	im := mustSync(t, inboxF)
	trash := mustFolder(t, u, "Trash")
	if _, _, err := inboxF.CopyTo([]UID{im[0].UID}, trash); !errors.Is(err, ErrQuota) {
		t.Fatalf("copy over quota: %v", err)
	}
	if _, _, err := inboxF.MoveTo([]UID{im[0].UID}, trash); err != nil {
		t.Fatalf("move over quota: %v", err)
	}
	bytes, n, err := u.Usage()
	if err != nil || bytes != 1200 || n != 3 {
		t.Fatalf("usage %d %d %v", bytes, n, err)
	}
	// Space freed behind our back (a file removed by hand) is noticed.
	names := filesIn(t, filepath.Join(root, "x.test", "q", ".Trash", "cur"))
	os.Remove(filepath.Join(root, "x.test", "q", ".Trash", "cur", names[0]))
	if bytes, n, _ := u.Usage(); bytes != 800 || n != 2 {
		t.Fatalf("usage after removal %d %d", bytes, n)
	}
	inbox := mustFolder(t, u, Inbox)
	msgs := mustSync(t, inbox)
	inbox.Expunge([]UID{msgs[0].UID})
	if err := s.CheckQuota("q@x.test", 100); err != nil {
		t.Fatalf("after expunge: %v", err)
	}
}

// TestQuotaDeliveryCount: deliveries count their own size at once, without
// recounting new/ (see quota.go); a change made behind the store's back is
// seen by Usage at once and by delivery checks within quotaRecount.
func TestQuotaDeliveryCount(t *testing.T) {
	root := t.TempDir()
	s := openStore(t, root, func(o *Options) {
		o.Quota = func(string) int64 { return 4000 }
		o.QuotaGrace = 0
	})
	u := mustUser(t, s, "q@x.test")
	newDir := filepath.Join(root, "x.test", "q", "new")
	for i := range 5 { // 5 x 400 unread, left by another program
		name := fmt.Sprintf("1700000000.M%dP1Q%d.other,S=400,W=400", i, i)
		if err := os.WriteFile(filepath.Join(newDir, name), []byte(strings.Repeat("z", 400)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CheckQuota("q@x.test", 400); err != nil {
		t.Fatalf("2000 of 4000 used: %v", err)
	}
	body := strings.Repeat("y", 400)
	for used := 2400; used <= 4000; used += 400 {
		deliver(t, s, body, "q@x.test")
		err := s.CheckQuota("q@x.test", 400)
		if fits := used+400 <= 4000; fits != (err == nil) {
			t.Fatalf("after a delivery, %d of 4000 used: CheckQuota(400) = %v", used, err)
		}
		if bytes, n, err := u.Usage(); err != nil || bytes != int64(used) || n != int64(used/400) {
			t.Fatalf("usage %d %d %v, want %d bytes", bytes, n, err, used)
		}
	}
	if err := tryDeliver(s, "x", "q@x.test"); !errors.Is(err, ErrQuota) {
		t.Fatalf("delivery when full: %v", err)
	}
	// The other program's messages are removed by hand.
	for _, n := range filesIn(t, newDir) {
		if strings.HasSuffix(n, ".other,S=400,W=400") {
			os.Remove(filepath.Join(newDir, n))
		}
	}
	if bytes, _, _ := u.Usage(); bytes != 2000 {
		t.Fatalf("usage after removal: %d, want 2000", bytes)
	}
	deadline := time.Now().Add(quotaRecount + 2*time.Second)
	for s.CheckQuota("q@x.test", 400) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("space freed by hand not seen by delivery checks after %v", quotaRecount+2*time.Second)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
