package mailstore

// Group commit of directory fsyncs: concurrent deliveries into the same
// new/ share one fsync that started after their link was made, instead of
// queueing one fsync each.

import (
	"sync"

	"github.com/mailsuite/mailsuite/internal/atomicfile"
)

type dirSyncer struct {
	dir       string
	mu        sync.Mutex
	cond      *sync.Cond
	started   uint64 // fsyncs begun
	completed uint64 // fsyncs finished
	running   bool
	lastErr   error
}

func (s *Store) dirSyncer(dir string) *dirSyncer {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.dirSyncs[dir]
	if d == nil {
		d = &dirSyncer{dir: dir}
		d.cond = sync.NewCond(&d.mu)
		s.dirSyncs[dir] = d
	}
	return d
}

// newSyncer is the dirSyncer of st's INBOX new/, kept on st so that a
// delivery need not look it up under the store's lock.
func (s *Store) newSyncer(st *userState) *dirSyncer {
	if d := st.newSync.Load(); d != nil {
		return d
	}
	d := s.dirSyncer(st.dir + "/new")
	st.newSync.Store(d)
	return d
}

// sync returns once an fsync of the directory that began after the call
// has completed.
func (d *dirSyncer) sync() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	want := d.started + 1
	for d.completed < want {
		if d.running {
			d.cond.Wait()
			continue
		}
		d.running = true
		d.started++
		gen := d.started
		d.mu.Unlock()
		err := atomicfile.SyncDir(d.dir)
		d.mu.Lock()
		d.running = false
		d.completed = gen
		d.lastErr = err
		d.cond.Broadcast()
	}
	return d.lastErr
}
