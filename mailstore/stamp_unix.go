package mailstore

import (
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

func stampOf(st os.FileInfo) stamp {
	s := stamp{mtime: st.ModTime().UnixNano(), size: st.Size()}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		s.ino = sys.Ino
	}
	return s
}

// dirStatter stats files relative to open new/ and cur/ directory handles
// (fstatat), which skips resolving the full path for each of the many
// files a first sync of a large folder looks at.
type dirStatter struct {
	fds [2]int // new, cur; -1 if not open
}

func openStatter(dir string) *dirStatter {
	d := &dirStatter{fds: [2]int{-1, -1}}
	for i, sub := range []string{"new", "cur"} {
		if fd, err := unix.Open(filepath.Join(dir, sub), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err == nil {
			d.fds[i] = fd
		}
	}
	return d
}

// stat returns size and mtime of a regular file in new/ or cur/.
func (d *dirStatter) stat(inNew bool, name string) (size, mtime int64, err error) {
	fd := d.fds[1]
	if inNew {
		fd = d.fds[0]
	}
	if fd < 0 {
		return 0, 0, os.ErrNotExist
	}
	var st unix.Stat_t
	if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return 0, 0, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return 0, 0, os.ErrInvalid
	}
	return st.Size, st.Mtim.Nano(), nil
}

func (d *dirStatter) close() {
	for _, fd := range d.fds {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}
