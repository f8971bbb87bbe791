package mailstore

// The POP3 maildrop lock (RFC 1939 §8): one holder per user, within this
// process (a flag) and across processes (flock on a lock file, released by
// the kernel if the process dies).

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

const maildropLockFile = "mailsuite-maildrop.lock"

// maildropWait is how long LockMaildrop waits for a holder to let go: a
// client that QUITs and logs in again at once (phones do) must not race
// the end of its previous session.
const maildropWait = time.Second

// LockMaildrop takes the exclusive POP3 maildrop lock on INBOX (RFC 1939 §8),
// or returns ErrInUse. It holds across processes (lock file) and within one.
// If the maildrop is locked it retries for up to a second before giving up.
func (u *User) LockMaildrop() (release func(), err error) {
	deadline := time.Now().Add(maildropWait)
	for {
		release, err := u.tryLockMaildrop()
		if !errors.Is(err, ErrInUse) || time.Now().After(deadline) {
			return release, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (u *User) tryLockMaildrop() (release func(), err error) {
	if err := u.s.checkOpen(); err != nil {
		return nil, err
	}
	st := u.st
	st.dropMu.Lock()
	defer st.dropMu.Unlock()
	if st.dropLocked {
		return nil, fmt.Errorf("%w: %s", ErrInUse, st.name)
	}
	p := filepath.Join(st.dir, maildropLockFile)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("mailstore: maildrop lock of %s: %w", st.name, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if err == unix.EWOULDBLOCK {
			return nil, fmt.Errorf("%w: %s (another process)", ErrInUse, st.name)
		}
		return nil, fmt.Errorf("mailstore: maildrop lock of %s: %w", st.name, err)
	}
	st.dropLocked = true
	done := false
	return func() {
		st.dropMu.Lock()
		defer st.dropMu.Unlock()
		if done {
			return
		}
		done = true
		unix.Flock(int(f.Fd()), unix.LOCK_UN)
		f.Close()
		st.dropLocked = false
	}, nil
}
