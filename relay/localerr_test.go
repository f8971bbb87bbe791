package relay

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
)

// A full disk while storing a bounce locally is temporary: syscall.Errno
// has a Temporary method that says false for ENOSPC, but only Permanent
// may make a local delivery fail for good.
func TestLocalDiskFullIsRetried(t *testing.T) {
	d := startDNS(t)
	var calls atomic.Int32
	o := testOptions(t.TempDir(), d, 1)
	o.DeliverLocal = func(context.Context, string, []string, []byte) error {
		if calls.Add(1) == 1 {
			return fmt.Errorf("store: %w", &fs.PathError{Op: "write", Path: "tmp/x", Err: syscall.ENOSPC})
		}
		return nil
	}
	q := startQueue(t, o)
	id := enqueue(t, q, "", []string{"alice@local.test"}, testMessage("postmaster@local.test", "dsn@test"))
	waitFor(t, "delivery on retry", func() bool { l, _ := q.List(); return calls.Load() >= 2 && len(l) == 0 })
	if _, err := os.Stat(filepath.Join(o.DataDir, "queue", "failed", id+".env")); err == nil {
		t.Error("the bounce was given up after a full disk")
	}
}
