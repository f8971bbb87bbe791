package mailstore

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// CopyTo copies uids (with flags and dates) to dest, durably, returning the
// source and new destination UIDs pairwise (for COPYUID). Files are
// hard-linked (same file system), falling back to a byte copy.
func (f *Folder) CopyTo(uids []UID, dest *Folder) (src, dst []UID, err error) {
	return f.copyTo(uids, dest, false)
}

type copySrc struct {
	uid   UID
	key   string
	path  string
	info  string
	kws   []Flag
	size  int64
	vsize int64
	date  int64
}

// copyTo copies; for a move (usage does not grow) the quota is not checked,
// so a user over quota can still move mail to Trash.
func (f *Folder) copyTo(uids []UID, dest *Folder, move bool) (src, dst []UID, err error) {
	if dest.u.st != f.u.st {
		return nil, nil, fmt.Errorf("mailstore: copy between users: %w", ErrNotPermitted)
	}
	// Snapshot the sources, then work on dest without holding both locks
	// (copies in both directions at once must not deadlock).
	ix, err := f.lock()
	if err != nil {
		return nil, nil, err
	}
	var items []copySrc
	for _, uid := range uids {
		m := ix.find(uid)
		if m == nil {
			continue
		}
		c := copySrc{uid: uid, key: m.key, path: ix.msgPath(m), size: m.size, vsize: m.vsize, date: m.date}
		for i := 0; i < len(m.info); i++ {
			ch := m.info[i]
			if k, ok := ix.kw.name(ch); ok {
				c.kws = append(c.kws, k)
			} else if ch < 'a' || ch > 'z' {
				c.info += string(ch)
			}
		}
		items = append(items, c)
	}
	ix.mu.Unlock()
	if len(items) == 0 {
		return nil, nil, nil
	}
	var total int64
	for _, c := range items {
		total += c.size
	}
	if !move {
		if err := f.u.st.checkQuota(total, true, false); err != nil {
			return nil, nil, err
		}
	}
	dix, err := dest.lock()
	if err != nil {
		return nil, nil, err
	}
	defer dix.mu.Unlock()
	msgs := make([]*message, len(items))
	now := time.Now()
	for i, c := range items {
		letters, err := dix.keywordLetters(c.kws)
		if err != nil {
			return nil, nil, err
		}
		key := sizedKey(f.u.s.newKey(now), c.size, c.vsize)
		msgs[i] = &message{key: key, info: sortInfo(append([]byte(c.info), letters...)),
			size: c.size, vsize: c.vsize, date: c.date, recent: true, ext: setExt("", dateExt, c.date)}
	}
	next := 0
	placed, err := dix.addFiles(msgs, func(m *message) error {
		c := items[next]
		next++
		return f.placeCopy(c, dix.msgPath(m))
	})
	if err != nil {
		return nil, nil, fmt.Errorf("mailstore: copy %s to %s: %w", f.name, dest.name, err)
	}
	src, dst = nil, nil
	for i, c := range items {
		if placed[i] != 0 { // 0: expunged meanwhile, skipped
			src, dst = append(src, c.uid), append(dst, placed[i])
		}
	}
	if len(dst) == 0 {
		return nil, nil, nil
	}
	dest.u.st.hub.publish(Event{User: dest.u.st.name, Folder: dest.name, Kind: EventAdded, UIDs: dst})
	return src, dst, nil
}

// placeCopy links (or copies) a source message file to target, finding the
// source again by UID if its flags changed meanwhile.
func (f *Folder) placeCopy(c copySrc, target string) error {
	err := os.Link(c.path, target)
	if errors.Is(err, os.ErrNotExist) {
		// Renamed by a flag change elsewhere: look it up by key. The source
		// index is not locked here (the caller holds dest's lock; dest may
		// be the source).
		p, ok := findByKey(filepath.Dir(filepath.Dir(c.path)), c.key)
		if !ok {
			return errGone
		}
		c.path = p
		err = os.Link(c.path, target)
	}
	if errors.Is(err, os.ErrNotExist) {
		return errGone
	}
	if err == nil {
		return nil
	}
	// Not linkable (another file system, link limit): copy the bytes.
	in, oerr := os.Open(c.path)
	if errors.Is(oerr, os.ErrNotExist) {
		return errGone
	}
	if oerr != nil {
		return oerr
	}
	defer in.Close()
	out, cerr := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if cerr != nil {
		return cerr
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		d := time.Unix(0, c.date)
		err = os.Chtimes(target, d, d)
	}
	if err != nil {
		os.Remove(target)
	}
	return err
}

// MoveTo moves uids to dest (copy then expunge, durable), for MOVE.
func (f *Folder) MoveTo(uids []UID, dest *Folder) (src, dst []UID, err error) {
	src, dst, err = f.copyTo(uids, dest, true)
	if err != nil || len(src) == 0 {
		return src, dst, err
	}
	if _, err := f.Expunge(src); err != nil {
		return src, dst, fmt.Errorf("mailstore: move from %s: %w", f.name, err)
	}
	return src, dst, nil
}

// findByKey looks for the file of key in a folder's cur/ and new/.
func findByKey(dir, key string) (string, bool) {
	for _, sub := range []string{"cur", "new"} {
		names, err := readDirNames(filepath.Join(dir, sub))
		if err != nil {
			continue
		}
		for _, n := range names {
			if k, _, _ := splitFileName(n); k == key {
				return filepath.Join(dir, sub, n), true
			}
		}
	}
	return "", false
}
