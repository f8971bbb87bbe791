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
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/mailsuite/mailsuite/internal/atomicfile"
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
	// floor: records of dovecot-uidlist below it that are not indexed
	// belong to files the last complete directory scan did not find.
	floor    UID
	lastRead UID // next UID of the last dovecot-uidlist read

	newSt, curSt, listSt, kwSt stamp
	newDirty                   bool // this process linked into new/

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

// readUIDListHeader learns UIDVALIDITY, creating dovecot-uidlist if the
// folder has none yet (under the lock, so two creators agree).
func (ix *index) readUIDListHeader() error {
	ul, st, err := ix.readUIDList()
	if err == nil {
		ix.uidValidity, ix.guid, ix.hdrExtra = ul.uidValidity, ul.guid, ul.hdrExtra
		ix.lastRead = ul.nextUID
		if ix.guid == "" {
			ix.guid = newGUID() // version 1 lists have none
		}
		_ = st // the first sync reads the records
		return nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	lk, err := ix.s.lockUIDList(ix.dir)
	if err != nil {
		return err
	}
	defer lk.unlock()
	if ul, _, err := ix.readUIDList(); err == nil {
		ix.uidValidity, ix.guid, ix.hdrExtra = ul.uidValidity, ul.guid, ul.hdrExtra
		return nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	ix.uidValidity = ix.s.newUIDValidity()
	ix.guid = newGUID()
	ix.nextUID = 1
	return ix.writeUIDList(nil)
}

// readUIDList reads and parses dovecot-uidlist. A malformed file is treated
// as missing, as Dovecot does: UIDs are rebuilt under a new UIDVALIDITY.
func (ix *index) readUIDList() (*uidList, stamp, error) {
	p := ix.path("dovecot-uidlist")
	f, err := os.Open(p)
	if err != nil {
		return nil, stamp{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, stamp{}, err
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, stamp{}, fmt.Errorf("mailstore: read %s: %w", p, err)
	}
	ul, err := parseUIDList(data)
	if err != nil {
		ix.s.log.Warn("mailstore: rebuilding unreadable dovecot-uidlist", "path", p, "err", err)
		return nil, stamp{}, fmt.Errorf("%w (%v)", os.ErrNotExist, err)
	}
	return ul, stampOf(st), nil
}

// writeUIDList rewrites dovecot-uidlist: every indexed message, plus the
// records of the file just read (ul, may be nil) that are not indexed here
// but may belong to files this process has not seen yet: those at or above
// floor. Records below floor whose files the last complete scan did not
// find are expunged and dropped. Caller holds the dotlock.
func (ix *index) writeUIDList(ul *uidList) error {
	out := &uidList{uidValidity: ix.uidValidity, nextUID: ix.nextUID, guid: ix.guid, hdrExtra: ix.hdrExtra}
	out.recs = make([]uidRec, 0, len(ix.msgs))
	for _, m := range ix.msgs {
		out.recs = append(out.recs, uidRec{uid: m.uid, key: m.key, ext: m.ext})
	}
	if ul != nil && ul.uidValidity == ix.uidValidity {
		n := len(out.recs)
		for _, r := range ul.recs {
			if r.uid >= ix.floor && ix.byKey[r.key] == nil && ix.find(r.uid) == nil {
				out.recs = append(out.recs, r)
			}
		}
		if len(out.recs) > n {
			sort.Slice(out.recs, func(i, j int) bool { return out.recs[i].uid < out.recs[j].uid })
		}
	}
	p := ix.path("dovecot-uidlist")
	if err := ix.s.aw.WriteFile(p, out.marshal()); err != nil {
		return fmt.Errorf("mailstore: write uidlist of %s: %w", ix.name, err)
	}
	st, err := statStamp(p)
	if err != nil {
		return fmt.Errorf("mailstore: write uidlist of %s: %w", ix.name, err)
	}
	ix.listSt = st
	return nil
}

// saveUIDList records newly assigned messages. Like Dovecot, it appends
// their lines to the file it just read (header N then lags; readers take
// the highest UID + 1) and rewrites the whole file only when it has
// gathered many lines of expunged messages. Caller holds the dotlock and
// read ul (with stamp st) under it.
func (ix *index) saveUIDList(ul *uidList, st stamp, added []*message) error {
	p := ix.path("dovecot-uidlist")
	if ul.torn || len(ul.recs) > 2*len(ix.msgs)+1000 {
		return ix.writeUIDList(ul)
	}
	var b bytes.Buffer
	for _, m := range added {
		appendUIDRec(&b, uidRec{uid: m.uid, key: m.key, ext: m.ext})
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return ix.writeUIDList(ul)
	}
	defer f.Close()
	if cur, err := f.Stat(); err != nil || stampOf(cur) != st {
		return ix.writeUIDList(ul) // not the file we read: be safe
	}
	if fail := ix.s.aw.Fail; fail != nil {
		if err := fail(atomicfile.StepWrite, p); err != nil {
			return fmt.Errorf("mailstore: append uidlist of %s: %w", ix.name, err)
		}
	}
	if _, err := f.Write(b.Bytes()); err != nil {
		return fmt.Errorf("mailstore: append uidlist of %s: %w", ix.name, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("mailstore: append uidlist of %s: %w", ix.name, err)
	}
	nst, err := f.Stat()
	if err != nil {
		return fmt.Errorf("mailstore: append uidlist of %s: %w", ix.name, err)
	}
	ix.listSt = stampOf(nst)
	return nil
}

func (ix *index) loadKeywords() error {
	p := ix.path("dovecot-keywords")
	data, err := os.ReadFile(p)
	st, _ := statStamp(p)
	ix.kwSt = st
	ix.flagCache = nil
	if errors.Is(err, os.ErrNotExist) {
		ix.kw = keywordTable{}
		return nil
	}
	if err != nil {
		return fmt.Errorf("mailstore: read %s: %w", p, err)
	}
	t, err := parseKeywords(data)
	if err != nil {
		// Keep going without names: flags letters stay on the files.
		ix.s.log.Warn("mailstore: ignoring unreadable dovecot-keywords", "path", p, "err", err)
		t = &keywordTable{}
	}
	ix.kw = *t
	return nil
}

// keywordLetters returns info letters for keywords, defining new ones in
// dovecot-keywords (under the dotlock) as needed.
func (ix *index) keywordLetters(kws []Flag) ([]byte, error) {
	var out []byte
	var missing []Flag
	for _, k := range kws {
		if c := ix.kw.letter(k); c != 0 {
			out = append(out, c)
		} else {
			missing = append(missing, k)
		}
	}
	if len(missing) == 0 {
		return out, nil
	}
	lk, err := ix.s.lockUIDList(ix.dir)
	if err != nil {
		return nil, err
	}
	defer lk.unlock()
	if err := ix.loadKeywords(); err != nil {
		return nil, err
	}
	for _, k := range missing {
		c := ix.kw.add(k)
		if c == 0 {
			return nil, fmt.Errorf("mailstore: folder %s: more than %d keywords: %w", ix.name, maxKeywords, ErrNotPermitted)
		}
		out = append(out, c)
	}
	p := ix.path("dovecot-keywords")
	if err := ix.s.aw.WriteFile(p, ix.kw.marshal()); err != nil {
		return nil, fmt.Errorf("mailstore: write keywords of %s: %w", ix.name, err)
	}
	ix.kwSt, _ = statStamp(p)
	ix.flagCache = nil
	return out, nil
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

// adoptCur records cur/'s new stamp after this process changed it, unless
// something else changed it before (then the next Sync re-reads it).
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
