package mailstore

// Cross-process locks.
//
// dovecot-uidlist.lock is Dovecot's dotlock for a folder's UID list: whoever
// creates it (O_EXCL) may assign UIDs and rewrite dovecot-uidlist and
// dovecot-keywords. A lock older than dotlockStale is taken to be left by a
// crashed process and removed, as Dovecot does.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

const (
	dotlockStale   = 2 * time.Minute
	dotlockTimeout = 30 * time.Second
)

type dotlock struct{ path string }

func (s *Store) lockUIDList(dir string) (*dotlock, error) {
	path := filepath.Join(dir, "dovecot-uidlist.lock")
	timeout := s.lockTimeout
	if timeout == 0 {
		timeout = dotlockTimeout
	}
	deadline := time.Now().Add(timeout)
	wait := 200 * time.Microsecond
	for {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			f.WriteString(strconv.Itoa(os.Getpid()) + "\n")
			f.Close()
			return &dotlock{path: path}, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("mailstore: lock %s: %w", path, err)
		}
		if st, err := os.Stat(path); err == nil && time.Since(st.ModTime()) > dotlockStale {
			os.Remove(path)
			continue
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("mailstore: lock %s: timed out: %w", path, ErrInUse)
		}
		time.Sleep(wait)
		if wait < 20*time.Millisecond {
			wait *= 2
		}
	}
}

func (l *dotlock) unlock() {
	if l != nil {
		os.Remove(l.path)
	}
}

// stamp identifies a directory's or file's state cheaply: a changed mtime,
// size or inode means "re-read".
type stamp struct {
	mtime int64
	size  int64
	ino   uint64
}

func statStamp(path string) (stamp, error) {
	st, err := os.Stat(path)
	if err != nil {
		return stamp{}, err
	}
	return stampOf(st), nil
}
