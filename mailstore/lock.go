package mailstore

// Cross-process locks.
//
// dovecot-uidlist.lock is Dovecot's dotlock for a folder's UID list: whoever
// creates it may assign UIDs and rewrite dovecot-uidlist and
// dovecot-keywords. It holds "<pid>:<hostname>", as Dovecot writes it, and
// appears with that content already in it (a temp file hard-linked into
// place, as Dovecot does). A lock is stale, and removed, when its process
// is gone (same host, no such PID), when it carries our own PID but
// predates this Store (a crashed earlier run that had the same PID, as in a
// restarted container), when it is empty and older than emptyLockGrace
// (its creator was killed between creating and writing it), or when it is
// older than dotlockStale (Dovecot's MAILDIR_UIDLIST_LOCK_STALE_TIMEOUT).

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

const (
	dotlockStale   = 2 * time.Minute
	dotlockTimeout = 30 * time.Second
	emptyLockGrace = 2 * time.Second // Dovecot's STALE_PID_CHECK_SECS
)

type dotlock struct{ path string }

func (s *Store) lockUIDList(dir string) (*dotlock, error) {
	path := filepath.Join(dir, "dovecot-uidlist.lock")
	timeout := s.lockTimeout
	if timeout == 0 {
		timeout = dotlockTimeout
	}
	deadline := time.Now().Add(timeout)
	tmp := filepath.Join(dir, fmt.Sprintf(".dovecot-uidlist.lock.%d.%d", s.pid, s.seq.Add(1)))
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(s.pid)+":"+s.lockHost), 0o600); err != nil {
		return nil, fmt.Errorf("mailstore: lock %s: %w", path, err)
	}
	defer os.Remove(tmp)
	wait := 200 * time.Microsecond
	for {
		err := os.Link(tmp, path)
		if err == nil {
			return &dotlock{path: path}, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("mailstore: lock %s: %w", path, err)
		}
		if st, stale := s.staleLock(path); stale {
			// Remove it only if it is still the lock we judged: another
			// process may have replaced it meanwhile.
			if st2, err := os.Stat(path); err == nil && os.SameFile(st, st2) && st.ModTime().Equal(st2.ModTime()) {
				s.log.Warn("mailstore: removing stale lock", "path", path)
				os.Remove(path)
			}
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

// staleLock reports whether the lock at path was left by a process that
// no longer holds it, with the lock's stat to compare before removing it.
func (s *Store) staleLock(path string) (os.FileInfo, bool) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, false // gone already: just retry
	}
	age := time.Since(st.ModTime())
	if age > dotlockStale {
		return st, true
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, false
	}
	text := strings.TrimSpace(string(data))
	if text == "" {
		return st, age > emptyLockGrace // a live creator writes at once
	}
	pidText, host, hasHost := strings.Cut(text, ":")
	pid, err := strconv.Atoi(pidText)
	if err != nil || pid <= 0 || (hasHost && host != s.lockHost) {
		return nil, false // another host's or tool's: wait for its age
	}
	if pid == s.pid {
		return st, st.ModTime().Before(s.opened)
	}
	return st, unix.Kill(pid, 0) == unix.ESRCH
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
