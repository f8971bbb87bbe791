package mailstore

import (
	"os"
	"syscall"
)

func stampOf(st os.FileInfo) stamp {
	s := stamp{mtime: st.ModTime().UnixNano(), size: st.Size()}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		s.ino = sys.Ino
	}
	return s
}
