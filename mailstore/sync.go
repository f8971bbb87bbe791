package mailstore

// Sync: bring a folder's index up to date with its directories.

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"sort"
	"sync"
)

// syncDiff is what a sync found that this process had not done itself.
type syncDiff struct {
	added, expunged, flagged []UID
}

func (d syncDiff) empty() bool {
	return len(d.added) == 0 && len(d.expunged) == 0 && len(d.flagged) == 0
}

type diskEntry struct {
	name, key, info string
	inNew           bool
}

// readDirNames lists a directory's entries (names only: no per-file stat).
func readDirNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

// syncLocked re-reads what changed. force re-reads everything. Caller holds
// ix.mu. When notify is set, changes made by others are sent to watchers.
func (ix *index) syncLocked(force, notify bool) (diff syncDiff, err error) {
	defer func() {
		// Report what was found even if a later step failed.
		if len(diff.expunged) > 0 && ix.cache != nil {
			ix.cache.forget(diff.expunged)
		}
		if notify && !diff.empty() {
			ix.s.notifyDiff(ix.user, ix.name, diff)
		}
	}()
	newSt, err := statStamp(ix.path("new"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return diff, fmt.Errorf("%w: %s", ErrNoSuchFolder, ix.name)
		}
		return diff, fmt.Errorf("mailstore: sync %s: %w", ix.name, err)
	}
	curSt, err := statStamp(ix.path("cur"))
	if err != nil {
		return diff, fmt.Errorf("mailstore: sync %s: %w", ix.name, err)
	}
	listSt, _ := statStamp(ix.path("dovecot-uidlist"))
	if kwSt, _ := statStamp(ix.path("dovecot-keywords")); kwSt != ix.kwSt {
		if err := ix.loadKeywords(); err != nil {
			return diff, err
		}
	}
	scanNew := force || ix.rescan || ix.newDirty || newSt != ix.newSt
	scanCur := force || ix.rescan || curSt != ix.curSt
	listChanged := force || listSt != ix.listSt
	if !scanNew && !scanCur && !listChanged {
		return diff, nil
	}
	ix.newDirty, ix.rescan = false, false
	ix.gen++
	gen := ix.gen
	byName := make(map[string]diskEntry)
	scan := func(sub string) error {
		names, err := readDirNames(ix.path(sub))
		if err != nil {
			return fmt.Errorf("mailstore: sync %s: %w", ix.name, err)
		}
		inNew := sub == "new"
		for _, n := range names {
			key, info, has := splitFileName(n)
			if !validKey(key) {
				continue
			}
			if !inNew && !has {
				// A cur/ file without ":2,": give it the standard form so
				// its path is always derivable from key and flags.
				if os.Rename(ix.path("cur", n), ix.path("cur", fileName(key, ""))) != nil {
					continue
				}
				n = fileName(key, "")
			}
			if m := ix.byKey[key]; m != nil {
				if inNew && m.seenGen == gen {
					continue
				}
				if !inNew && !m.inNew && m.info != info {
					diff.flagged = append(diff.flagged, m.uid)
				}
				m.inNew, m.info, m.seenGen = inNew, info, gen
				continue
			}
			if old, dup := byName[key]; dup && !old.inNew {
				continue
			}
			byName[key] = diskEntry{name: n, key: key, info: info, inNew: inNew}
		}
		return nil
	}
	if scanNew {
		if err := scan("new"); err != nil {
			return diff, err
		}
	}
	missing := func() int {
		n := 0
		for _, m := range ix.msgs {
			if m.seenGen != gen && ((m.inNew && scanNew) || (!m.inNew && scanCur)) {
				n++
			}
		}
		return n
	}
	if !scanCur && missing() > 0 {
		scanCur = true // moved from new/ to cur/ by someone else
	}
	if scanCur {
		if err := scan("cur"); err != nil {
			return diff, err
		}
		if missing() > 0 {
			// A rename racing with readdir can hide a file: look once more.
			if err := scan("cur"); err != nil {
				return diff, err
			}
		}
	}
	// Expunged: indexed files no longer on disk.
	if n := missing(); n > 0 {
		kept := ix.msgs[:0]
		for _, m := range ix.msgs {
			if m.seenGen != gen && ((m.inNew && scanNew) || (!m.inNew && scanCur)) {
				diff.expunged = append(diff.expunged, m.uid)
				delete(ix.byKey, m.key)
				continue
			}
			kept = append(kept, m)
		}
		clear(ix.msgs[len(kept):])
		ix.msgs = kept
	}
	if len(byName) > 0 || listChanged {
		diff.added, err = ix.assignUIDs(byName, listChanged)
		if err != nil {
			return diff, err
		}
	}
	if scanNew {
		ix.newSt = newSt
	}
	if scanCur {
		ix.curSt = curSt
	}
	if err := ix.moveNewToCur(); err != nil {
		ix.s.log.Warn("mailstore: moving new/ to cur/", "folder", ix.name, "err", err)
	}
	return diff, nil
}

// assignUIDs gives unknown files their UIDs: the ones dovecot-uidlist
// already has (another process assigned them), else new ones in delivery
// order, written back to dovecot-uidlist under the dotlock.
func (ix *index) assignUIDs(byName map[string]diskEntry, listChanged bool) ([]UID, error) {
	var lk *dotlock
	if len(byName) > 0 {
		var err error
		if lk, err = ix.s.lockUIDList(ix.dir); err != nil {
			return nil, err
		}
		defer lk.unlock()
	}
	ul, st, err := ix.readUIDList()
	if errors.Is(err, os.ErrNotExist) {
		if lk == nil {
			if lk, err = ix.s.lockUIDList(ix.dir); err != nil {
				return nil, err
			}
			defer lk.unlock()
		}
		// Lost or unreadable list: start a new UID space.
		ul = &uidList{uidValidity: ix.s.newUIDValidity(), nextUID: 1, guid: newGUID()}
		st = stamp{}
		for _, m := range ix.msgs {
			byName[m.key] = diskEntry{name: m.fileName(), key: m.key, info: m.info, inNew: m.inNew}
		}
		ix.msgs, ix.byKey = nil, make(map[string]*message)
	} else if err != nil {
		return nil, fmt.Errorf("mailstore: sync %s: %w", ix.name, err)
	}
	if ul.uidValidity != ix.uidValidity {
		// The folder was recreated behind us: all old UIDs are gone.
		for _, m := range ix.msgs {
			byName[m.key] = diskEntry{name: m.fileName(), key: m.key, info: m.info, inNew: m.inNew}
		}
		ix.msgs, ix.byKey = nil, make(map[string]*message)
		ix.uidValidity, ix.guid, ix.hdrExtra = ul.uidValidity, ul.guid, ul.hdrExtra
	}
	oldNext := ix.nextUID
	if ul.nextUID > ix.nextUID {
		ix.nextUID = ul.nextUID
	}
	ix.listSt = st
	defer func() {
		// Records new since our last look whose files we did not see: a
		// readdir racing with renames may have hidden them. Look again.
		for i := len(ul.recs) - 1; i >= 0 && ul.recs[i].uid >= oldNext; i-- {
			if r := ul.recs[i]; ix.byKey[r.key] == nil && ix.find(r.uid) == nil {
				ix.rescan = true
				break
			}
		}
	}()
	if len(byName) == 0 {
		return nil, nil
	}
	statter := openStatter(ix.dir)
	defer statter.close()
	// Files the list already has keep their UIDs (taken in the list's UID
	// order, so they arrive sorted); the others get new ones.
	var unknown []diskEntry
	var exts []string
	var uids []UID
	for _, r := range ul.recs {
		if e, ok := byName[r.key]; ok && ix.find(r.uid) == nil {
			unknown, exts, uids = append(unknown, e), append(exts, r.ext), append(uids, r.uid)
			delete(byName, r.key)
		}
	}
	for _, e := range byName {
		unknown, exts, uids = append(unknown, e), append(exts, ""), append(uids, 0)
	}
	var added []UID
	var fresh []*message
	sorted := true
	last := UID(0)
	if n := len(ix.msgs); n > 0 {
		last = ix.msgs[n-1].uid
	}
	var assigned []*message
	statted := 0 // listed files whose records lacked the date
	for i, m := range ix.newMessages(statter, unknown, exts) {
		switch {
		case m == nil:
		case uids[i] != 0:
			m.uid = uids[i]
			fresh = append(fresh, m)
			if m.statted {
				statted++
			}
		default:
			assigned = append(assigned, m)
		}
	}
	// New UIDs go in delivery order (see deliveryOrder).
	orders := make([]deliveryOrder, len(assigned))
	for i, m := range assigned {
		orders[i] = orderOf(m.key, m.date)
	}
	sort.Sort(byDelivery{assigned, orders})
	for _, m := range assigned {
		m.uid = ix.nextUID
		ix.nextUID++
		m.recent = true
		fresh = append(fresh, m)
	}
	for _, m := range fresh {
		if m.uid <= last {
			sorted = false
		}
		last = m.uid
		ix.msgs = append(ix.msgs, m)
		ix.byKey[m.key] = m
		added = append(added, m.uid)
	}
	if !sorted {
		slices.SortFunc(ix.msgs, func(a, b *message) int { return cmp.Compare(a.uid, b.uid) })
	}
	switch {
	case lk == nil:
	case statted > 1000:
		// Many records without dates (written by Dovecot or an older
		// version): rewrite once so the next first sync need not stat.
		if err := ix.writeUIDList(ul); err != nil {
			return nil, err
		}
	case len(assigned) > 0:
		if err := ix.saveUIDList(ul, st, assigned); err != nil {
			return nil, err
		}
	}
	sort.Slice(added, func(i, j int) bool { return added[i] < added[j] })
	return added, nil
}

// newMessages runs newMessage for many files, in parallel when there are
// many (the first sync of a large folder stats every file once). Failed
// entries are nil.
func (ix *index) newMessages(d *dirStatter, es []diskEntry, exts []string) []*message {
	out := make([]*message, len(es))
	workers := runtime.GOMAXPROCS(0)
	if len(es) < 2000 || workers < 2 {
		workers = 1
	}
	var wg sync.WaitGroup
	chunk := (len(es) + workers - 1) / workers
	for lo := 0; lo < len(es); lo += chunk {
		hi := min(lo+chunk, len(es))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := lo; i < hi; i++ {
				if m, ok := ix.newMessage(d, es[i], exts[i]); ok {
					out[i] = m
				}
			}
		}()
	}
	wg.Wait()
	return out
}

// newMessage builds an index entry for a file first seen on disk: sizes
// from its name or its dovecot-uidlist record, the date from the record
// (dateExt); what is missing from stat, and vsize, if nowhere else, from
// one read. What it had to look up is added to the record.
func (ix *index) newMessage(d *dirStatter, e diskEntry, ext string) (*message, bool) {
	m := &message{key: e.key, info: e.info, inNew: e.inNew, ext: ext, recent: e.inNew, seenGen: ix.gen}
	m.size, m.vsize = keySizes(e.key)
	if m.size < 0 {
		m.size, _ = extInt(ext, 'S')
	}
	if m.vsize < 0 {
		m.vsize, _ = extInt(ext, 'W')
	}
	date, ok := extInt(ext, dateExt)
	if !ok || m.size < 0 {
		size, mtime, err := d.stat(e.inNew, e.name)
		if err != nil {
			return nil, false
		}
		if m.size < 0 {
			m.size = size
		}
		date = mtime
		m.ext = setExt(m.ext, dateExt, mtime)
		m.statted = true
	}
	m.date = date
	if m.vsize < 0 {
		v, err := fileVSize(ix.msgPath(m))
		if err != nil {
			return nil, false
		}
		m.vsize = v
		m.ext = setExt(m.ext, 'W', v)
	}
	return m, true
}

// moveNewToCur renames new/ files into cur/ with an empty info, as maildir
// readers do once they have seen a message. Not fsynced: losing the move in
// a crash leaves the file in new/, which is harmless.
func (ix *index) moveNewToCur() error {
	var before, beforeNew stamp
	moved := false
	var firstErr error
	for _, m := range ix.msgs {
		if !m.inNew {
			continue
		}
		if !moved {
			before, _ = statStamp(ix.path("cur"))
			beforeNew, _ = statStamp(ix.path("new"))
			moved = true
		}
		err := os.Rename(ix.path("new", m.key), ix.path("cur", fileName(m.key, m.info)))
		if errors.Is(err, os.ErrNotExist) {
			// Another process moved (or expunged) it since our look at
			// new/, maybe after the stamp adoptDir is about to take:
			// re-read both directories next time, or the index could
			// keep it in new/ and miss its later removal from cur/.
			ix.rescan = true
			continue
		}
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		m.inNew = false
	}
	if moved {
		ix.adoptDir(before, "cur")
		ix.adoptDir(beforeNew, "new")
	}
	return firstErr
}

// byDelivery sorts messages by their precomputed delivery order.
type byDelivery struct {
	msgs   []*message
	orders []deliveryOrder
}

func (b byDelivery) Len() int           { return len(b.msgs) }
func (b byDelivery) Less(i, j int) bool { return b.orders[i].compare(b.orders[j]) < 0 }
func (b byDelivery) Swap(i, j int) {
	b.msgs[i], b.msgs[j] = b.msgs[j], b.msgs[i]
	b.orders[i], b.orders[j] = b.orders[j], b.orders[i]
}
