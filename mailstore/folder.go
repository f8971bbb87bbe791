package mailstore

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// Folder is a handle to one folder. Handles are cheap; many sessions may hold
// handles to the same folder and share its in-memory index.
type Folder struct {
	u    *User
	name string
	ix   *index
}

// Name returns the folder's name.
func (f *Folder) Name() string { return f.name }

// UIDValidity returns the folder's UIDVALIDITY (0 if the folder cannot be
// read).
func (f *Folder) UIDValidity() uint32 {
	ix := f.ix
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if err := ix.ensureLoaded(); err != nil {
		return 0
	}
	return ix.uidValidity
}

// lock takes the index mutex with the folder loaded and the store open.
func (f *Folder) lock() (*index, error) {
	if err := f.u.s.checkOpen(); err != nil {
		return nil, err
	}
	ix := f.ix
	ix.mu.Lock()
	if err := ix.ensureLoaded(); err != nil {
		ix.mu.Unlock()
		return nil, err
	}
	return ix, nil
}

// Sync brings the folder's index up to date with the disk (picking up files
// other programs dropped into new/ or cur/, assigning them UIDs) and returns
// all messages in UID order. It reads only directory listings and the index
// files, never message files it has seen before. The Flags slices of the
// result are shared between messages: do not modify them.
func (f *Folder) Sync() ([]MessageInfo, error) {
	ix, err := f.lock()
	if err != nil {
		return nil, err
	}
	defer ix.mu.Unlock()
	if _, err := ix.syncLocked(false, true); err != nil {
		return nil, err
	}
	return ix.snapshot(), nil
}

// Status returns counters without building a full list for the caller.
func (f *Folder) Status() (Status, error) {
	ix, err := f.lock()
	if err != nil {
		return Status{}, err
	}
	defer ix.mu.Unlock()
	if _, err := ix.syncLocked(false, true); err != nil {
		return Status{}, err
	}
	st := Status{UIDNext: ix.nextUID, UIDValidity: ix.uidValidity, Messages: uint32(len(ix.msgs))}
	for _, m := range ix.msgs {
		if !hasLetter(m.info, 'S') {
			st.Unseen++
		}
		if m.recent {
			st.Recent++
		}
		st.Size += m.vsize
	}
	return st, nil
}

// Open returns the message's content as stored (line endings as delivered).
// A file renamed under us (flags changed by another process) is found again
// by its key after a re-sync.
func (f *Folder) Open(uid UID) (*os.File, error) {
	ix, err := f.lock()
	if err != nil {
		return nil, err
	}
	defer ix.mu.Unlock()
	for attempt := 0; attempt < 3; attempt++ {
		m := ix.find(uid)
		if m == nil {
			return nil, fmt.Errorf("%w: %s UID %d", ErrNoSuchMessage, f.name, uid)
		}
		file, err := os.Open(ix.msgPath(m))
		if err == nil {
			return file, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("mailstore: open %s UID %d: %w", f.name, uid, err)
		}
		if _, err := ix.syncLocked(true, true); err != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("%w: %s UID %d (file keeps moving)", ErrNoSuchMessage, f.name, uid)
}

// Keywords returns the keywords defined for this folder (dovecot-keywords).
func (f *Folder) Keywords() []Flag {
	ix, err := f.lock()
	if err != nil {
		return nil
	}
	defer ix.mu.Unlock()
	return ix.kw.list()
}

// splitFlags returns info letters for system flags and the keywords.
func splitFlags(flags []Flag) (sys []byte, kws []Flag, err error) {
	for _, fl := range flags {
		fl = canonicalFlag(fl)
		if c, ok := systemFlagLetter[fl]; ok {
			sys = append(sys, c)
			continue
		}
		if fl == `\Recent` {
			continue // session state, not stored (RFC 3501 §2.3.2)
		}
		if !validKeyword(fl) {
			return nil, nil, fmt.Errorf("mailstore: bad flag %q: %w", fl, ErrNotPermitted)
		}
		kws = append(kws, fl)
	}
	return sys, kws, nil
}

// Append stores a message with flags and internal date, durably, and returns
// its UID (ErrQuota if over quota).
func (f *Folder) Append(r io.Reader, flags []Flag, date time.Time) (UID, error) {
	if err := f.u.s.checkOpen(); err != nil {
		return 0, err
	}
	sys, kws, err := splitFlags(flags)
	if err != nil {
		return 0, err
	}
	if err := f.u.st.checkQuota(0, false, false); err != nil {
		return 0, err
	}
	s := f.u.s
	key := s.newKey(time.Now())
	t, err := s.createTemp(f.ix.path("tmp"), key)
	if err != nil {
		return 0, err
	}
	defer t.discard()
	if _, err := io.Copy(t, r); err != nil {
		return 0, fmt.Errorf("mailstore: append to %s: %w", f.name, err)
	}
	if err := t.finish(); err != nil {
		return 0, err
	}
	if err := f.u.st.checkQuota(t.cnt.size, true, false); err != nil {
		return 0, err
	}
	if date.IsZero() {
		date = time.Now()
	}
	if err := os.Chtimes(t.path, date, date); err != nil {
		return 0, fmt.Errorf("mailstore: append to %s: %w", f.name, err)
	}
	ix, err := f.lock()
	if err != nil {
		return 0, err
	}
	defer ix.mu.Unlock()
	letters, err := ix.keywordLetters(kws)
	if err != nil {
		return 0, err
	}
	m := &message{
		key: sizedKey(key, t.cnt.size, t.cnt.vsize), info: sortInfo(append(sys, letters...)),
		size: t.cnt.size, vsize: t.cnt.vsize, date: date.UnixNano(), recent: true,
		ext: setExt("", dateExt, date.UnixNano()),
	}
	uids, err := ix.addFiles([]*message{m}, func(m *message) error {
		return os.Rename(t.path, ix.msgPath(m))
	})
	if err != nil {
		return 0, fmt.Errorf("mailstore: append to %s: %w", f.name, err)
	}
	f.u.st.hub.publish(Event{User: f.u.st.name, Folder: f.name, Kind: EventAdded, UIDs: uids})
	return uids[0], nil
}

// errGone tells addFiles that a message's source vanished (expunged while
// being copied): it is skipped, not an error.
var errGone = errors.New("source message gone")

// addFiles places new messages into cur/ (place puts one file there, or
// returns errGone to skip it) and gives them UIDs at once, under the
// dotlock, so the caller can report them (APPENDUID, COPYUID). The result
// is aligned with msgs; a skipped message has UID 0. Caller holds ix.mu.
// On error, files already placed are removed.
func (ix *index) addFiles(msgs []*message, place func(*message) error) ([]UID, error) {
	// Catch up first so our in-memory UIDs and the file agree.
	if _, err := ix.syncLocked(false, true); err != nil {
		return nil, err
	}
	lk, err := ix.s.lockUIDList(ix.dir)
	if err != nil {
		return nil, err
	}
	defer lk.unlock()
	ul, st, err := ix.readUIDList()
	if err != nil {
		return nil, fmt.Errorf("mailstore: %s: %w", ix.name, err)
	}
	if ul.uidValidity != ix.uidValidity {
		return nil, fmt.Errorf("mailstore: %s changed UIDVALIDITY under us: %w", ix.name, ErrNoSuchFolder)
	}
	if ul.nextUID > ix.nextUID {
		ix.nextUID = ul.nextUID
	}
	before, _ := statStamp(ix.path("cur"))
	var placed []*message
	fail := func(err error) ([]UID, error) {
		for _, m := range placed {
			os.Remove(ix.msgPath(m))
		}
		return nil, err
	}
	uids := make([]UID, len(msgs))
	for i, m := range msgs {
		err := place(m)
		if errors.Is(err, errGone) {
			continue
		}
		if err != nil {
			return fail(err)
		}
		placed = append(placed, m)
		uids[i] = 1 // marks placed; the real UID below
	}
	if len(placed) == 0 {
		return uids, nil
	}
	ix.adoptDir(before, "cur") // right after placing, see SetFlags
	if err := ix.s.dirSyncer(ix.path("cur")).sync(); err != nil {
		return fail(err)
	}
	saved := ix.nextUID
	for i, m := range msgs {
		if uids[i] == 0 {
			continue
		}
		m.uid = ix.nextUID
		m.seenGen = ix.gen
		ix.nextUID++
		uids[i] = m.uid
		ix.msgs = append(ix.msgs, m)
		ix.byKey[m.key] = m
	}
	if err := ix.saveUIDList(ul, st, placed); err != nil {
		ix.msgs = ix.msgs[:len(ix.msgs)-len(placed)]
		for _, m := range placed {
			delete(ix.byKey, m.key)
		}
		ix.nextUID = saved
		return fail(err)
	}
	return uids, nil
}
