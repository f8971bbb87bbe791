package relay

// The spool is the queue's on-disk layout, <data>/queue/:
//
//	<id>.lock   created first, flock(2)ed by whoever works on the message
//	<id>.msg    the message, CRLF line endings
//	<id>.env    the envelope; its existence is what makes the message queued
//	.wake       touched by another process (the admin CLI) to wake the server
//	failed/     <id>.msg and <id>.env of messages that finally failed
//
// Invariants: the envelope is renamed into place only after the message file
// is durable, and is only ever replaced whole (atomicfile). Whoever changes
// an envelope holds the message's lock, and re-reads the envelope after
// taking it. flock locks die with their process, so a SIGKILLed server
// leaves nothing held.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mailsuite/mailsuite/internal/atomicfile"
)

// Sentinel errors of the admin functions.
var (
	ErrNotFound = errors.New("relay: no such queued message")
	ErrBusy     = errors.New("relay: message is being delivered right now")
	ErrClosed   = errors.New("relay: queue closed")
)

type spool struct {
	dir    string
	failed string
	aw     atomicfile.Writer
}

func openSpool(dataDir string) (*spool, error) {
	s := &spool{dir: filepath.Join(dataDir, "queue")}
	s.failed = filepath.Join(s.dir, "failed")
	if err := os.MkdirAll(s.failed, 0o700); err != nil {
		return nil, fmt.Errorf("relay: create queue directory: %w", err)
	}
	return s, nil
}

func (s *spool) path(id, ext string) string { return filepath.Join(s.dir, id+ext) }

// msgLock is a held flock on <id>.lock.
type msgLock struct{ f *os.File }

func (l *msgLock) unlock() {
	unix.Flock(int(l.f.Fd()), unix.LOCK_UN)
	l.f.Close()
}

// create makes and locks the lock file of a new message. It fails if the
// lock file already exists (the ID is taken).
func (s *spool) create(id string) (*msgLock, error) {
	f, err := os.OpenFile(s.path(id, ".lock"), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("relay: create lock of %s: %w", id, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("relay: lock %s: %w", id, err)
	}
	return &msgLock{f}, nil
}

// lock takes the lock of an existing message, polling for up to wait.
// It returns ErrNotFound if the message is gone (also when it vanished
// while we waited) and ErrBusy if someone else kept holding it.
func (s *spool) lock(id string, wait time.Duration) (*msgLock, error) {
	if !ValidID(id) {
		return nil, ErrNotFound
	}
	f, err := os.OpenFile(s.path(id, ".lock"), os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		// Files put back by hand (say, from failed/) come without a
		// lock file: make one. If the envelope is gone, an orphaned
		// lock file may remain; cleanOrphans removes it at Start.
		if _, serr := os.Stat(s.path(id, ".env")); serr != nil {
			return nil, ErrNotFound
		}
		f, err = os.OpenFile(s.path(id, ".lock"), os.O_RDWR|os.O_CREATE, 0o600)
	}
	if err != nil {
		return nil, fmt.Errorf("relay: open lock of %s: %w", id, err)
	}
	deadline := time.Now().Add(wait)
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("relay: lock %s: %w", id, err)
		}
		if !time.Now().Before(deadline) {
			f.Close()
			return nil, ErrBusy
		}
		time.Sleep(20 * time.Millisecond)
	}
	l := &msgLock{f}
	// The holder before us may have removed the message (and its lock
	// file): then we hold a lock on an orphaned inode.
	if _, err := os.Stat(s.path(id, ".env")); err != nil {
		l.unlock()
		if errors.Is(err, fs.ErrNotExist) {
			return nil, ErrNotFound
		}
		return nil, fmt.Errorf("relay: stat envelope of %s: %w", id, err)
	}
	return l, nil
}

func (s *spool) readEnvelope(id string) (*Envelope, error) {
	data, err := os.ReadFile(s.path(id, ".env"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("relay: read envelope: %w", err)
	}
	e, err := ParseEnvelope(data)
	if err != nil {
		return nil, fmt.Errorf("relay: %s: %w", id, err)
	}
	if e.ID != id {
		return nil, fmt.Errorf("relay: %s: envelope names id %q", id, e.ID)
	}
	return e, nil
}

// writeEnvelope replaces the envelope durably. The caller holds the lock.
func (s *spool) writeEnvelope(e *Envelope) error {
	if err := s.aw.WriteFile(s.path(e.ID, ".env"), e.Marshal()); err != nil {
		return fmt.Errorf("relay: save envelope: %w", err)
	}
	return nil
}

// ids lists queued messages (those with an envelope), oldest name first.
func (s *spool) ids() ([]string, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("relay: list queue: %w", err)
	}
	var out []string
	for _, e := range ents {
		if id, ok := strings.CutSuffix(e.Name(), ".env"); ok && ValidID(id) && e.Type().IsRegular() {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out, nil
}

// remove deletes a delivered message; the caller holds the lock, which
// goes last so that a waiter finds the envelope gone.
func (s *spool) remove(id string) error {
	for _, ext := range []string{".env", ".msg", ".lock"} {
		if err := os.Remove(s.path(id, ext)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("relay: remove %s: %w", id, err)
		}
	}
	return atomicfile.SyncDir(s.dir)
}

// moveToFailed moves a finished, failed message to failed/, message first:
// a crash between the two renames leaves the envelope in the queue without
// its message, which process recognises and finishes moving (the other
// order would leave a message without envelope, which cleanOrphans deletes).
func (s *spool) moveToFailed(id string) error {
	for _, ext := range []string{".msg", ".env"} {
		if err := os.Rename(s.path(id, ext), filepath.Join(s.failed, id+ext)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("relay: move %s to failed: %w", id, err)
		}
		if err := atomicfile.SyncDir(s.failed); err != nil {
			return fmt.Errorf("relay: move %s to failed: %w", id, err)
		}
	}
	if err := os.Remove(s.path(id, ".lock")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("relay: remove lock of %s: %w", id, err)
	}
	return atomicfile.SyncDir(s.dir)
}

// cleanOrphans removes the leftovers of a crash: of an Enqueue before its
// envelope landed (a lock file nobody holds, a message without envelope)
// and of atomic writes (temp files).
func (s *spool) cleanOrphans() error {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("relay: list queue: %w", err)
	}
	have := map[string]bool{}
	for _, e := range ents {
		have[e.Name()] = true
	}
	for _, e := range ents {
		// atomicfile's temp files (".<name>.tmp*") left by a crash; young
		// ones may belong to an admin command writing right now.
		if name := e.Name(); strings.HasPrefix(name, ".") && strings.Contains(name, ".tmp") {
			if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > time.Minute {
				os.Remove(filepath.Join(s.dir, name))
			}
			continue
		}
		id, ok := strings.CutSuffix(e.Name(), ".lock")
		if !ok || have[id+".env"] || !ValidID(id) {
			continue
		}
		f, err := os.OpenFile(s.path(id, ".lock"), os.O_RDWR, 0)
		if err != nil {
			continue
		}
		if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil {
			// Not held: its Enqueue died. Still no envelope? Then clean.
			if _, err := os.Stat(s.path(id, ".env")); errors.Is(err, fs.ErrNotExist) {
				os.Remove(s.path(id, ".msg"))
				os.Remove(s.path(id, ".lock"))
			}
		}
		f.Close()
	}
	return nil
}

// touchWake tells a server in another process to rescan.
func (s *spool) touchWake() error {
	p := filepath.Join(s.dir, ".wake")
	now := time.Now()
	if err := os.Chtimes(p, now, now); errors.Is(err, fs.ErrNotExist) {
		return os.WriteFile(p, nil, 0o600)
	} else if err != nil {
		return fmt.Errorf("relay: touch wake file: %w", err)
	}
	return nil
}

func (s *spool) wakeStamp() time.Time {
	fi, err := os.Stat(filepath.Join(s.dir, ".wake"))
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime()
}
