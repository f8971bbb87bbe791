package relay

import (
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/mailsuite/mailsuite/internal/atomicfile"
)

// When the remote has accepted but the envelope cannot be saved (disk
// full for a moment), the next attempt must not send again: the worker
// remembers the outcome and saves it once the disk allows.
func TestUnsavedOutcomeIsNotSentAgain(t *testing.T) {
	d := startDNS(t)
	s := startSink(t, "127.0.0.1", 0, nil, nil)
	d.add(t, "remote.test. 60 IN MX 10 mx1.remote.test.", "mx1.remote.test. 60 IN A 127.0.0.1")
	o := testOptions(t.TempDir(), d, s.port()) // hold-off after the failure: 150ms
	q, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	enqueue(t, q, "alice@local.test", []string{"bob@remote.test", "carol@remote.test"}, testMessage("alice@local.test", "m1@test"))
	var envWrites atomic.Int32
	q.spool.aw.Fail = func(step atomicfile.Step, path string) error {
		if step == atomicfile.StepWrite && strings.HasSuffix(path, ".env") && envWrites.Add(1) == 1 {
			return syscall.ENOSPC // the save right after the remote's 250
		}
		return nil
	}
	if err := q.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	waitFor(t, "the queue to empty", func() bool { l, _ := q.List(); return envWrites.Load() > 1 && len(l) == 0 })
	if c := s.counts(); len(c) != 2 || c["<m1@test> bob@remote.test"] != 1 || c["<m1@test> carol@remote.test"] != 1 {
		t.Errorf("deliveries %v, want bob and carol once each", c)
	}
}
