package mailstore

// The per-folder index: one *index per folder directory per Store, shared
// by every Folder handle, guarded by its mutex. It mirrors dovecot-uidlist
// plus what the directory listings say (current file name, flags, sizes).
//
// Invariants:
//   - msgs is sorted by UID; byKey indexes the same messages by base name.
//   - UIDs are only assigned while holding dovecot-uidlist.lock, after
//     re-reading dovecot-uidlist, so another process (Dovecot, a second
//     mailsuite) never sees one file under two UIDs.
//   - A message file is never read here once indexed; Sync reads only
//     directory listings and the index files, and only when their stamps
//     changed (or this process delivered into new/).

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

type message struct {
	uid     UID
	key     string
	info    string // flag letters after ":2,"
	inNew   bool   // still in new/ (no ":2," info)
	size    int64
	vsize   int64
	date    int64 // mtime, unix nanoseconds
	recent  bool
	statted bool   // its date came from stat, not its record (first sync only)
	ext     string // dovecot-uidlist ext fields, kept on rewrite
	seenGen uint64
}

func (m *message) fileName() string {
	if m.inNew {
		return m.key
	}
	return fileName(m.key, m.info)
}

type index struct {
	s    *Store
	user string
	name string
	dir  string

	mu          sync.Mutex
	gone        bool // folder deleted or renamed away
	loaded      bool
	uidValidity uint32
	nextUID     UID
	guid        string
	hdrExtra    string
	msgs        []*message
	byKey       map[string]*message
	gen         uint64

	newSt, curSt, listSt, kwSt stamp
	newDirty                   bool // this process linked into new/
	rescan                     bool // re-read both directories at the next sync

	kw        keywordTable
	flagCache map[string][]Flag
	cache     *msgCache
}

func (ix *index) path(elem ...string) string {
	return filepath.Join(append([]string{ix.dir}, elem...)...)
}

func (ix *index) msgPath(m *message) string {
	if m.inNew {
		return ix.path("new", m.key)
	}
	return ix.path("cur", fileName(m.key, m.info))
}

// find returns the message with uid (binary search), or nil.
func (ix *index) find(uid UID) *message {
	i := sort.Search(len(ix.msgs), func(i int) bool { return ix.msgs[i].uid >= uid })
	if i < len(ix.msgs) && ix.msgs[i].uid == uid {
		return ix.msgs[i]
	}
	return nil
}

// cleanLeftovers removes temp files a crash left in the folder directory:
// dotlock temp files and atomicfile temp files of our index files.
func (ix *index) cleanLeftovers() {
	ents, err := os.ReadDir(ix.dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		n := e.Name()
		if e.IsDir() || !(strings.HasPrefix(n, ".dovecot-uidlist.") || strings.HasPrefix(n, ".dovecot-keywords.tmp") ||
			strings.HasPrefix(n, "."+cacheFile+".tmp")) {
			continue
		}
		if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > time.Hour {
			os.Remove(filepath.Join(ix.dir, n))
		}
	}
}

func newGUID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ensureLoaded reads the folder the first time it is used.
func (ix *index) ensureLoaded() error {
	if ix.gone {
		return fmt.Errorf("%w: %s", ErrNoSuchFolder, ix.name)
	}
	if ix.loaded {
		return nil
	}
	if _, err := os.Stat(ix.path("cur")); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%w: %s", ErrNoSuchFolder, ix.name)
		}
		return fmt.Errorf("mailstore: open folder %s: %w", ix.name, err)
	}
	for _, d := range []string{"new", "tmp"} {
		if err := os.Mkdir(ix.path(d), 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("mailstore: open folder %s: %w", ix.name, err)
		}
	}
	ix.cleanLeftovers()
	if err := ix.readUIDListHeader(); err != nil {
		return err
	}
	if err := ix.loadKeywords(); err != nil {
		return err
	}
	ix.byKey = make(map[string]*message)
	ix.loaded = true
	if _, err := ix.syncLocked(true, false); err != nil {
		ix.loaded = false
		return err
	}
	return nil
}

// flags maps info letters to sorted flags, memoised per distinct info
// string (a 100k folder has few distinct flag combinations). The returned
// slice is shared: callers get it with cap == len so appends copy.
func (ix *index) flags(info string) []Flag {
	if fl, ok := ix.flagCache[info]; ok {
		return fl
	}
	var fl []Flag
	for i := 0; i < len(info); i++ {
		if f, ok := systemLetters[info[i]]; ok {
			fl = append(fl, f)
		}
	}
	sort.Slice(fl, func(i, j int) bool { return fl[i] < fl[j] })
	nsys := len(fl)
	for i := 0; i < len(info); i++ {
		if k, ok := ix.kw.name(info[i]); ok {
			fl = append(fl, k)
		}
	}
	sort.Slice(fl[nsys:], func(i, j int) bool { return fl[nsys+i] < fl[nsys+j] })
	fl = fl[:len(fl):len(fl)]
	if ix.flagCache == nil {
		ix.flagCache = make(map[string][]Flag)
	}
	ix.flagCache[info] = fl
	return fl
}

func (ix *index) info(m *message) MessageInfo {
	return MessageInfo{
		UID: m.uid, Key: m.key, Size: m.size, VSize: m.vsize,
		InternalDate: time.Unix(0, m.date), Flags: ix.flags(m.info), Recent: m.recent,
	}
}

func (ix *index) snapshot() []MessageInfo {
	out := make([]MessageInfo, len(ix.msgs))
	for i, m := range ix.msgs {
		out[i] = ix.info(m)
	}
	return out
}

// adoptDir records the new stamp of cur/ or new/ after this process changed
// it (before: the stamp just before our change), unless something else had
// changed it since our last read (then the next Sync re-reads it). A change
// by another process between our change and this stat would go unseen
// until the directory changes again; callers adopt right after their
// renames to keep that window to microseconds.
func (ix *index) adoptDir(before stamp, which string) {
	after, err := statStamp(ix.path(which))
	if err != nil {
		return
	}
	switch which {
	case "cur":
		if before == ix.curSt {
			ix.curSt = after
		}
	case "new":
		if before == ix.newSt {
			ix.newSt = after
		}
	}
}
