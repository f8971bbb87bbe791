package mailstore

// Cross-process locks.
//
// dovecot-uidlist.lock is Dovecot's dotlock for a folder's UID list: whoever
// creates it (O_EXCL) may assign UIDs and rewrite dovecot-uidlist and
// dovecot-keywords. It holds "<pid>:<hostname>", as Dovecot writes it. A
// lock is stale, and removed, when its process is gone (same host, no such
// PID), when it carries our own PID but predates this Store (a crashed
// earlier run that had the same PID, as in a restarted container), or when
// it is older than dotlockStale (Dovecot's MAILDIR_UIDLIST_LOCK_STALE_TIMEOUT).

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
			f.WriteString(strconv.Itoa(s.pid) + ":" + s.lockHost)
			f.Close()
			return &dotlock{path: path}, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("mailstore: lock %s: %w", path, err)
		}
		if s.staleLock(path) {
			s.log.Warn("mailstore: removing stale lock", "path", path)
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

// staleLock reports whether the lock at path was left by a process that
// no longer holds it.
func (s *Store) staleLock(path string) bool {
	st, err := os.Stat(path)
	if err != nil {
		return false // gone already: just retry
	}
	if time.Since(st.ModTime()) > dotlockStale {
		return true
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	pidText, host, hasHost := strings.Cut(strings.TrimSpace(string(data)), ":")
	pid, err := strconv.Atoi(pidText)
	if err != nil || pid <= 0 || (hasHost && host != s.lockHost) {
		return false // being written, or another host's: wait for age
	}
	if pid == s.pid {
		return st.ModTime().Before(s.opened)
	}
	return unix.Kill(pid, 0) == unix.ESRCH
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
