package mailstore

import (
	"os"
	"path/filepath"
	"testing"
)

// TestMoveNewToCurLostRace: another process moved a message from new/ to
// cur/ between this index's look at new/ and its own rename, which then
// fails with ENOENT. The index must not keep believing the file is in new/:
// when the other process later expunges it from cur/, the next Sync has to
// drop it (the stress test once ended with such a phantom message).
func TestMoveNewToCurLostRace(t *testing.T) {
	root := t.TempDir()
	s := openStore(t, root)
	deliver(t, s, "Subject: x\r\n\r\nbody\r\n", "r@x.test")
	f := mustFolder(t, mustUser(t, s, "r@x.test"), Inbox)
	if msgs := mustSync(t, f); len(msgs) != 1 {
		t.Fatalf("%d messages, want 1", len(msgs))
	}
	ix, err := f.lock()
	if err != nil {
		t.Fatal(err)
	}
	m := ix.msgs[0]
	if m.inNew {
		t.Fatal("Sync left the message in new/")
	}
	// The state the race leaves: this index thinks the file is still in
	// new/, where another process has just taken it from.
	m.inNew = true
	ix.moveNewToCur()
	ix.mu.Unlock()

	// The other process expunges it.
	cur := filepath.Join(root, "x.test", "r", "cur")
	names := filesIn(t, cur)
	if len(names) != 1 {
		t.Fatalf("cur/ holds %v", names)
	}
	if err := os.Remove(filepath.Join(cur, names[0])); err != nil {
		t.Fatal(err)
	}
	if msgs := mustSync(t, f); len(msgs) != 0 {
		t.Fatalf("after the other process expunged it, Sync still lists %d message(s)", len(msgs))
	}
}
