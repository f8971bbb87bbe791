package mailstore

// Reading and writing a folder's dovecot-uidlist under its dotlock (the
// format itself is in uidlist.go).

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/mailsuite/mailsuite/internal/atomicfile"
)

// readUIDListHeader learns UIDVALIDITY, creating dovecot-uidlist if the
// folder has none yet (under the lock, so two creators agree).
func (ix *index) readUIDListHeader() error {
	ul, st, err := ix.readUIDList()
	if err == nil {
		ix.uidValidity, ix.guid, ix.hdrExtra = ul.uidValidity, ul.guid, ul.hdrExtra
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
// but whose files are on disk (another process's, not seen here yet: a
// readdir racing with renames can miss a file, so absence from the index
// proves nothing). Records of files that are gone are dropped. Caller holds
// the dotlock.
func (ix *index) writeUIDList(ul *uidList) error {
	out := &uidList{uidValidity: ix.uidValidity, nextUID: ix.nextUID, guid: ix.guid, hdrExtra: ix.hdrExtra}
	out.recs = make([]uidRec, 0, len(ix.msgs))
	for _, m := range ix.msgs {
		out.recs = append(out.recs, uidRec{uid: m.uid, key: m.key, ext: m.ext})
	}
	if ul != nil && ul.uidValidity == ix.uidValidity {
		var others []uidRec
		for _, r := range ul.recs {
			if ix.byKey[r.key] == nil && ix.find(r.uid) == nil {
				others = append(others, r)
			}
		}
		if len(others) > 0 {
			present, err := ix.diskKeys()
			if err != nil {
				return fmt.Errorf("mailstore: write uidlist of %s: %w", ix.name, err)
			}
			n := len(out.recs)
			for _, r := range others {
				if present[r.key] {
					out.recs = append(out.recs, r)
				}
			}
			if len(out.recs) > n {
				sort.Slice(out.recs, func(i, j int) bool { return out.recs[i].uid < out.recs[j].uid })
				// Files on disk we have not indexed: read the
				// directories again at the next sync.
				ix.newSt, ix.curSt = stamp{}, stamp{}
			}
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
	if ul.torn || ul.legacy || len(ul.recs) > 2*len(ix.msgs)+1000 {
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

// diskKeys lists the base names of the files in new/ and cur/.
func (ix *index) diskKeys() (map[string]bool, error) {
	keys := make(map[string]bool)
	for _, sub := range []string{"new", "cur"} {
		names, err := readDirNames(ix.path(sub))
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			k, _, _ := splitFileName(n)
			keys[k] = true
		}
	}
	return keys, nil
}
