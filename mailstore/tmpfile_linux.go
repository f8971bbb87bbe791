package mailstore

// Unnamed delivery files (Linux O_TMPFILE, open(2)): the message is
// written and fsynced as an inode with no directory entry, then linked
// straight into each recipient's new/. Compared with a named temp file this
// saves a directory insert and a removal in the shared tmp directory per
// delivery, and a crash before the link leaves nothing to clean: the
// kernel frees an unlinked inode at mount.

import (
	"fmt"
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

func (osFS) CreateUnnamed(dir string) (File, error) {
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, &os.PathError{Op: "open O_TMPFILE", Path: dir, Err: err}
	}
	return os.NewFile(uintptr(fd), dir+"/(unnamed)"), nil
}

// LinkUnnamed links through /proc/self/fd with AT_SYMLINK_FOLLOW, which
// needs no privilege (linkat's AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH).
func (osFS) LinkUnnamed(f File, newname string) error {
	sc, ok := f.(syscall.Conn)
	if !ok {
		return fmt.Errorf("link %s: %T has no file descriptor: %w", newname, f, errUnnamedUnsupported)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	var lerr error
	if err := rc.Control(func(fd uintptr) {
		lerr = unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(int(fd)), unix.AT_FDCWD, newname, unix.AT_SYMLINK_FOLLOW)
	}); err != nil {
		return err
	}
	if lerr != nil {
		return &os.LinkError{Op: "link", Old: "(unnamed)", New: newname, Err: lerr}
	}
	return nil
}
