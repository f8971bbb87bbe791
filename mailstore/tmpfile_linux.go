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
	"path/filepath"
	"strconv"
	"strings"
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

// linkNeedsInodeSync reports whether, on dir's file system, an unnamed
// file linked into a directory must be fsynced again for its new link count
// to be durable. fsync(2) of the directory is enough where the link is
// one journal transaction with the inode (XFS; ext4 with a journal); ext2
// and ext4 without a journal write only the directory, and any file system
// not known here gets the extra fsync too.
func linkNeedsInodeSync(dir string) bool {
	var fs unix.Statfs_t
	if unix.Statfs(dir, &fs) != nil {
		return true
	}
	switch fs.Type {
	case unix.XFS_SUPER_MAGIC:
		return false
	case unix.EXT4_SUPER_MAGIC: // ext2, ext3 and ext4 alike
		name, ok := blockDevName(dir)
		if !ok {
			return true
		}
		// The ext4 driver's sysfs entry names the journal thread, or
		// "<none>"; the ext2 driver has no such entry.
		task, err := os.ReadFile("/sys/fs/ext4/" + name + "/journal_task")
		if err != nil {
			return true
		}
		return strings.TrimSpace(string(task)) == "<none>"
	}
	return true
}

// blockDevName is the kernel's name ("vda", "sda1", "dm-0") of the block
// device holding dir.
func blockDevName(dir string) (string, bool) {
	var st unix.Stat_t
	if unix.Stat(dir, &st) != nil {
		return "", false
	}
	target, err := os.Readlink(fmt.Sprintf("/sys/dev/block/%d:%d", unix.Major(st.Dev), unix.Minor(st.Dev)))
	if err != nil {
		return "", false
	}
	return filepath.Base(target), true
}
