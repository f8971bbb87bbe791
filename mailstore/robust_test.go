package mailstore

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestStaleAndHeldUIDListLock(t *testing.T) {
	root := t.TempDir()
	s := openStore(t, root)
	s.lockTimeout = 300 * time.Millisecond
	f := mustFolder(t, mustUser(t, s, "l@x.test"), Inbox)
	mustSync(t, f)
	lock := filepath.Join(root, "x.test", "l", "dovecot-uidlist.lock")
	// A fresh lock held by a live process (our parent, say): assignment
	// waits, then fails.
	os.WriteFile(lock, []byte(strconv.Itoa(os.Getppid())+":"+s.lockHost), 0o600)
	deliver(t, s, msg(1), "l@x.test")
	if _, err := f.Sync(); !errors.Is(err, ErrInUse) {
		t.Fatalf("sync under a held lock: %v", err)
	}
	// The same lock, left by a crashed process long ago: taken over.
	old := time.Now().Add(-10 * time.Minute)
	os.Chtimes(lock, old, old)
	msgs, err := f.Sync()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("sync over a stale lock: %v %v", msgs, err)
	}
	if _, err := os.Stat(lock); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("lock not released")
	}
	// A fresh lock of a process that is gone (Dovecot's "pid:host"): taken
	// over at once.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(lock, []byte(strconv.Itoa(dead.Process.Pid)+":"+s.lockHost), 0o600)
	deliver(t, s, msg(2), "l@x.test")
	start := time.Now()
	if msgs, err := f.Sync(); err != nil || len(msgs) != 2 {
		t.Fatalf("sync over a dead process's lock: %v %v", msgs, err)
	}
	if time.Since(start) > 200*time.Millisecond {
		t.Fatalf("waited %v for a dead process's lock", time.Since(start))
	}
	// A live process on this host (us, from before this Store opened, as
	// after a crash when the restarted server got the same PID): stale.
	os.WriteFile(lock, []byte(strconv.Itoa(os.Getpid())+":"+s.lockHost), 0o600)
	before := s.opened.Add(-time.Second)
	os.Chtimes(lock, before, before)
	deliver(t, s, msg(3), "l@x.test")
	if msgs, err := f.Sync(); err != nil || len(msgs) != 3 {
		t.Fatalf("sync over our own old PID's lock: %v %v", msgs, err)
	}
	// An empty lock (creator killed before writing it): stale after 2s.
	os.WriteFile(lock, nil, 0o600)
	deliver(t, s, msg(5), "l@x.test")
	s.lockTimeout = 5 * time.Second
	start = time.Now()
	if msgs, err := f.Sync(); err != nil || len(msgs) != 4 {
		t.Fatalf("sync over an empty lock: %v %v", msgs, err)
	}
	if d := time.Since(start); d < emptyLockGrace-100*time.Millisecond || d > emptyLockGrace+2*time.Second {
		t.Fatalf("empty lock taken over after %v", d)
	}
	s.lockTimeout = 300 * time.Millisecond
	// Another host's fresh lock is respected.
	os.WriteFile(lock, []byte("1:other-host.example"), 0o600)
	deliver(t, s, msg(4), "l@x.test")
	if _, err := f.Sync(); !errors.Is(err, ErrInUse) {
		t.Fatalf("sync under another host's lock: %v", err)
	}
}

func TestDamagedUIDList(t *testing.T) {
	root := t.TempDir()
	s := openStore(t, root)
	for i := 0; i < 3; i++ {
		deliver(t, s, msg(i), "d@x.test")
	}
	f := mustFolder(t, mustUser(t, s, "d@x.test"), Inbox)
	before := mustSync(t, f)
	s.Close()
	p := filepath.Join(root, "x.test", "d", "dovecot-uidlist")
	data, _ := os.ReadFile(p)

	// A torn last line (crash during an append) is ignored: its message
	// gets its UID again (the next one, in delivery order), and the next
	// assignment does not glue a record onto the torn line.
	os.WriteFile(p, data[:len(data)-5], 0o600)
	s2 := openStore(t, root)
	f2 := mustFolder(t, mustUser(t, s2, "d@x.test"), Inbox)
	time.Sleep(1100 * time.Millisecond) // a later delivery second
	deliver(t, s2, msg(3), "d@x.test")
	msgs := mustSync(t, f2)
	if len(msgs) != 4 || msgs[2].UID != 3 || msgs[2].Key != before[2].Key || msgs[3].UID != 4 {
		t.Fatalf("after torn tail: %+v", msgs)
	}
	s2.Close()
	data, _ = os.ReadFile(p)
	if _, err := parseUIDList(data); err != nil || !strings.HasSuffix(string(data), "\n") {
		t.Fatalf("uidlist after repair: %v %q", err, data)
	}
	validity := f2.ix.uidValidity

	// Garbage: rebuilt under a new UIDVALIDITY, every message kept.
	os.WriteFile(p, []byte("3 garbage\x00\n"), 0o600)
	s3 := openStore(t, root)
	f3 := mustFolder(t, mustUser(t, s3, "d@x.test"), Inbox)
	msgs = mustSync(t, f3)
	if len(msgs) != 4 || f3.UIDValidity() == validity || f3.UIDValidity() == 0 {
		t.Fatalf("after garbage: %d messages, validity %d (was %d)", len(msgs), f3.UIDValidity(), validity)
	}
}

func TestMaildirRemovedUnderUs(t *testing.T) {
	root := t.TempDir()
	s := openStore(t, root)
	f := mustFolder(t, mustUser(t, s, "gone@x.test"), Inbox)
	mustSync(t, f)
	os.RemoveAll(filepath.Join(root, "x.test", "gone", "new"))
	deliver(t, s, msg(1), "gone@x.test") // recreates new/
	if msgs := mustSync(t, f); len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	sent := mustFolder(t, mustUser(t, s, "gone@x.test"), "Sent")
	os.RemoveAll(filepath.Join(root, "x.test", "gone", ".Sent"))
	if _, err := sent.Sync(); !errors.Is(err, ErrNoSuchFolder) {
		t.Fatalf("sync of removed folder: %v", err)
	}
	if _, err := sent.Append(strings.NewReader("x"), nil, time.Time{}); err == nil {
		t.Fatal("append to removed folder succeeded")
	}
}
