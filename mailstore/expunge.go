package mailstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Expunge removes uids durably (unlink, fsync dir, update index) before
// returning. Missing UIDs are skipped. It returns the UIDs removed.
// dovecot-uidlist is not rewritten: a UID whose file is gone is expunged
// for every reader, and the next rewrite drops its line.
func (f *Folder) Expunge(uids []UID) ([]UID, error) {
	ix, err := f.lock()
	if err != nil {
		return nil, err
	}
	defer ix.mu.Unlock()
	removed, err := ix.expungeLocked(uids)
	if len(removed) > 0 {
		f.u.st.hub.publish(Event{User: f.u.st.name, Folder: f.name, Kind: EventExpunge, UIDs: removed})
	}
	return removed, err
}

func (ix *index) expungeLocked(uids []UID) ([]UID, error) {
	beforeCur, _ := statStamp(ix.path("cur"))
	beforeNew, _ := statStamp(ix.path("new"))
	var removed []UID
	gone := map[UID]bool{}
	resyncs := 0
	dirs := map[string]bool{}
	for _, uid := range uids {
		m := ix.find(uid)
		if m == nil || gone[uid] {
			continue
		}
		p := ix.msgPath(m)
		err := os.Remove(p)
		if errors.Is(err, os.ErrNotExist) && resyncs < 3 {
			resyncs++
			if _, serr := ix.syncLocked(true, true); serr != nil {
				return removed, serr
			}
			if m = ix.find(uid); m == nil {
				continue
			}
			p = ix.msgPath(m)
			err = os.Remove(p)
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			ix.dropMessages(gone)
			return removed, fmt.Errorf("mailstore: expunge in %s: %w", ix.name, err)
		}
		dirs[filepath.Dir(p)] = true
		gone[uid] = true
		removed = append(removed, uid)
	}
	if len(removed) > 0 {
		ix.adoptDir(beforeCur, "cur") // right after our unlinks, see SetFlags
		ix.adoptDir(beforeNew, "new")
	}
	for d := range dirs {
		if err := ix.s.dirSyncer(d).sync(); err != nil {
			ix.dropMessages(gone)
			return removed, fmt.Errorf("mailstore: expunge in %s: %w", ix.name, err)
		}
	}
	ix.dropMessages(gone)
	if len(removed) > 0 && ix.cache != nil {
		ix.cache.forget(removed)
	}
	return removed, nil
}

// dropMessages removes uids from the index.
func (ix *index) dropMessages(gone map[UID]bool) {
	if len(gone) == 0 {
		return
	}
	kept := ix.msgs[:0]
	for _, m := range ix.msgs {
		if gone[m.uid] {
			delete(ix.byKey, m.key)
			continue
		}
		kept = append(kept, m)
	}
	clear(ix.msgs[len(kept):])
	ix.msgs = kept
}
