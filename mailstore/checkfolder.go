package mailstore

// Per-folder analysis and repair for Check: a snapshot of one folder taken
// under its locks, the findings it yields, and the repairs made through
// the store.

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// folderSnap is what a folder held at one moment, read under its locks.
type folderSnap struct {
	uidlist, keywords  []byte // nil: no such file
	newNames, curNames []string
}

func (c *checker) snapshot(dir string) (*folderSnap, error) {
	if ix := c.s.loadedIndex(dir); ix != nil {
		ix.mu.Lock()
		defer ix.mu.Unlock()
	}
	lk, err := c.s.lockUIDList(dir)
	if err != nil {
		return nil, err
	}
	defer lk.unlock()
	sn := &folderSnap{}
	read := func(name string) ([]byte, error) {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		if err == nil && data == nil {
			data = []byte{}
		}
		return data, err
	}
	if sn.uidlist, err = read("dovecot-uidlist"); err != nil {
		return nil, err
	}
	if sn.keywords, err = read("dovecot-keywords"); err != nil {
		return nil, err
	}
	// A missing new/ was reported; the store makes it again.
	if sn.newNames, err = readDirNames(filepath.Join(dir, "new")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if sn.curNames, err = readDirNames(filepath.Join(dir, "cur")); err != nil {
		return nil, err
	}
	return sn, nil
}

// uidsText lists UIDs for a detail line, at most ten.
func uidsText(uids []UID) string {
	var b strings.Builder
	for i, u := range uids {
		if i == 10 {
			fmt.Fprintf(&b, " and %d more", len(uids)-10)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.FormatUint(uint64(u), 10))
	}
	return b.String()
}

// validInfo reports whether every letter of a ":2," info is a flag: the
// system flags DFPRST or a keyword letter a..z.
func validInfo(info string) bool {
	for i := 0; i < len(info); i++ {
		if c := info[i]; !(c >= 'a' && c <= 'z') && !strings.ContainsRune("DFPRST", rune(c)) {
			return false
		}
	}
	return true
}

// fixSizes returns key with its ,S= and ,W= fields set to size and vsize
// (a field absent from key stays absent).
func fixSizes(key string, size, vsize int64) string {
	base, fields, ok := strings.Cut(key, ",")
	if !ok {
		return key
	}
	parts := strings.Split(fields, ",")
	for i, f := range parts {
		switch {
		case strings.HasPrefix(f, "S="):
			parts[i] = "S=" + strconv.FormatInt(size, 10)
		case strings.HasPrefix(f, "W="):
			parts[i] = "W=" + strconv.FormatInt(vsize, 10)
		}
	}
	return base + "," + strings.Join(parts, ",")
}

// folderCheck is the analysis of one folder and the repairs it calls for.
type folderCheck struct {
	c             *checker
	user, userDir string
	name, dir     string
	renames       []checkRename
	needSync      []*Finding // repaired by the store's sync
	needRewrite   []*Finding // repaired by rewriting dovecot-uidlist
}

type checkRename struct {
	from, to string
	f        *Finding
	newKey   bool // the base name changes: the message gets a new UID
}

type diskFile struct{ sub, name, info string }

func (fc *folderCheck) at(kind, path, detail string) *Finding {
	return fc.c.add(Finding{User: fc.user, Folder: fc.name, Path: fc.c.rel(path), Kind: kind, Detail: detail})
}

func (fc *folderCheck) analyse(sn *folderSnap) {
	dir := fc.dir
	kw, kwOK := keywordTable{}, true
	if sn.keywords != nil {
		if t, err := parseKeywords(sn.keywords); err != nil {
			fc.at(KindKeywordsBad, filepath.Join(dir, "dovecot-keywords"), err.Error())
			kwOK = false
		} else {
			kw = *t
		}
	}
	files := map[string][]diskFile{}
	var keys []string
	for _, sub := range []string{"new", "cur"} {
		names := sn.newNames
		if sub == "cur" {
			names = sn.curNames
		}
		for _, n := range names {
			if strings.HasPrefix(n, ".") {
				continue // other tools' hidden temp files: never read
			}
			key, df, ok := fc.checkName(sub, n, kw, kwOK)
			if !ok {
				continue
			}
			if files[key] == nil {
				keys = append(keys, key)
			}
			files[key] = append(files[key], df)
		}
	}
	slices.Sort(keys)
	fc.c.rep.Messages += len(keys)
	inCur := func(fs []diskFile) bool {
		return slices.ContainsFunc(fs, func(f diskFile) bool { return f.sub == "cur" })
	}
	listed, ok := fc.checkUIDList(sn, slices.ContainsFunc(keys, func(k string) bool { return inCur(files[k]) }))
	for _, k := range keys {
		fs := files[k]
		if len(fs) > 1 {
			fc.checkDuplicate(fs)
		}
		if ok && listed[k] == 0 {
			switch {
			case !inCur(fs):
				// Delivered, not yet seen by a session: normal.
				fc.c.rep.Pending++
			case sn.uidlist != nil: // a missing list was reported once
				fc.needSync = append(fc.needSync, fc.at(KindNoUID, filepath.Join(fc.dir, fs[0].sub, fs[0].name),
					"in cur/ but not in dovecot-uidlist"))
			}
		}
		fc.checkSizes(k, fs[0])
	}
	if ok && sn.uidlist != nil {
		fc.checkStale(sn, files)
	}
}

// checkName checks one directory entry's name and returns it split.
func (fc *folderCheck) checkName(sub, n string, kw keywordTable, kwOK bool) (string, diskFile, bool) {
	p := filepath.Join(fc.dir, sub, n)
	key, info, has := splitFileName(n)
	if !validKey(key) {
		fc.at(KindBadName, p, "not a maildir file name the store can use: invisible to clients")
		return "", diskFile{}, false
	}
	colon := strings.IndexByte(n, ':') >= 0
	switch {
	case sub == "new" && colon:
		// The store takes new/ files by base name alone: this one it
		// cannot open.
		f := fc.at(KindInfoInNew, p, "a file with an info part belongs in cur/")
		if !has || validInfo(info) {
			fc.renames = append(fc.renames, checkRename{from: p, to: filepath.Join(fc.dir, "cur", fileName(key, sortInfo([]byte(info)))), f: f})
		}
	case sub == "cur" && colon && !has:
		fc.needSync = append(fc.needSync, fc.at(KindBadInfo, p, `info other than ":2,": the store renames it to ":2," (dropping it)`))
	}
	if has {
		switch {
		case !validInfo(info):
			fc.at(KindBadFlags, p, fmt.Sprintf("flag letters %q include letters that are no flag", info))
		case sortInfo([]byte(info)) != info && sub == "cur":
			f := fc.at(KindUnsortedFlags, p, "flag letters not in ASCII order, or repeated")
			fc.renames = append(fc.renames, checkRename{from: p, to: filepath.Join(fc.dir, "cur", fileName(key, sortInfo([]byte(info)))), f: f})
		}
		if kwOK {
			var undef []byte
			for i := 0; i < len(info); i++ {
				if c := info[i]; c >= 'a' && c <= 'z' {
					if _, ok := kw.name(c); !ok {
						undef = append(undef, c)
					}
				}
			}
			if len(undef) > 0 {
				fc.at(KindUndefinedKw, p, fmt.Sprintf("keyword letters %q not defined in dovecot-keywords", undef))
			}
		}
	}
	return key, diskFile{sub: sub, name: n, info: info}, true
}

// checkUIDList parses dovecot-uidlist and returns UID by base name; ok is
// false when there is no usable list to compare the files with. A missing
// list is usable (empty): a folder gets one at its first sync.
func (fc *folderCheck) checkUIDList(sn *folderSnap, curFiles bool) (listed map[string]UID, ok bool) {
	p := filepath.Join(fc.dir, "dovecot-uidlist")
	if sn.uidlist == nil {
		if curFiles {
			fc.needSync = append(fc.needSync, fc.at(KindUIDListMissing, p, "messages in cur/ but no dovecot-uidlist: their UIDs are lost"))
		}
		return map[string]UID{}, true
	}
	ul, err := parseUIDList(sn.uidlist)
	if err != nil {
		fc.needSync = append(fc.needSync, fc.at(KindUIDListBad, p,
			err.Error()+": the store rebuilds it under a new UIDVALIDITY (clients fetch the folder again)"))
		return nil, false
	}
	if ul.torn {
		f := fc.at(KindUIDListTorn, p, "ends in a partial record (an append cut short)")
		f.Note = true
		fc.needRewrite = append(fc.needRewrite, f)
	}
	if bytes.HasPrefix(sn.uidlist, []byte("1 ")) {
		// Not a note: the store appends version 3 records to it, which a
		// version 1 reader takes for file names.
		fc.needRewrite = append(fc.needRewrite, fc.at(KindUIDListV1, p, "version 1 format: rewrite it as version 3 before mailsuite adds to it"))
	}
	listed = make(map[string]UID, len(ul.recs))
	var dups []UID
	for _, r := range ul.recs {
		if listed[r.key] != 0 {
			dups = append(dups, r.uid)
			continue
		}
		listed[r.key] = r.uid
	}
	if len(dups) > 0 {
		fc.needRewrite = append(fc.needRewrite, fc.at(KindUIDListDup, p,
			"records naming a file listed under a lower UID already: UIDs "+uidsText(dups)))
	}
	return listed, true
}

// checkDuplicate reports a base name present more than once, if it still
// is: a rename (new/ to cur/, a flag change) racing with the listing shows
// one file twice.
func (fc *folderCheck) checkDuplicate(fs []diskFile) {
	var names []string
	for _, f := range fs {
		if _, err := os.Lstat(filepath.Join(fc.dir, f.sub, f.name)); err == nil {
			names = append(names, f.sub+"/"+f.name)
		}
	}
	if len(names) > 1 {
		fc.at(KindDuplicate, filepath.Join(fc.dir, fs[0].sub, fs[0].name),
			fmt.Sprintf("one base name, %d files: %s", len(names), strings.Join(names, ", ")))
	}
}

// checkSizes compares ,S= with the file's size and ,W= with its size with
// CRLF line endings (read with no lock held).
func (fc *folderCheck) checkSizes(key string, f diskFile) {
	size, vsize := keySizes(key)
	p := filepath.Join(fc.dir, f.sub, f.name)
	fi, err := os.Lstat(p)
	if err != nil {
		return // expunged or renamed since the listing
	}
	if !fi.Mode().IsRegular() {
		fc.at(KindBadName, p, "not a regular file: invisible to clients")
		return
	}
	if size < 0 && vsize < 0 {
		return
	}
	realV := vsize
	if vsize >= 0 {
		if realV, err = fileVSize(p); err != nil {
			return
		}
	}
	if (size < 0 || size == fi.Size()) && realV == vsize {
		return
	}
	nk := fixSizes(key, fi.Size(), realV)
	detail := fmt.Sprintf("the name says S=%d W=%d, the file has %d octets (%d with CRLF)", size, vsize, fi.Size(), realV)
	r := checkRename{from: p, newKey: true, f: fc.at(KindSize, p, detail)}
	r.to = filepath.Join(fc.dir, f.sub, nk)
	if f.sub == "cur" {
		r.to = filepath.Join(fc.dir, "cur", fileName(nk, f.info))
	}
	fc.renames = append(fc.renames, r)
}

// checkStale reports records whose files are gone from both listings (the
// snapshot's and one more, which a rename racing with the first cannot
// also hide).
func (fc *folderCheck) checkStale(sn *folderSnap, files map[string][]diskFile) {
	ul, _ := parseUIDList(sn.uidlist)
	var gone []uidRec
	for _, r := range ul.recs {
		if files[r.key] == nil {
			gone = append(gone, r)
		}
	}
	if len(gone) == 0 {
		return
	}
	again, err := (&index{dir: fc.dir}).diskKeys()
	if err != nil {
		return
	}
	var uids []UID
	for _, r := range gone {
		if !again[r.key] {
			uids = append(uids, r.uid)
		}
	}
	if len(uids) > 0 {
		f := fc.at(KindStaleRecords, filepath.Join(fc.dir, "dovecot-uidlist"),
			fmt.Sprintf("%d record(s) of files no longer on disk (expunged), dropped at the next rewrite: UIDs %s", len(uids), uidsText(uids)))
		f.Note = true
		fc.needRewrite = append(fc.needRewrite, f)
	}
}

// repair applies what analyse found, holding the folder's index mutex so
// no session of this Store works on the folder meanwhile.
func (fc *folderCheck) repair() {
	if len(fc.renames) == 0 && len(fc.needSync) == 0 && len(fc.needRewrite) == 0 {
		return
	}
	s := fc.c.s
	ix := s.index(s.checkUserState(fc.user, fc.userDir), fc.name, fc.dir)
	ix.mu.Lock()
	defer ix.mu.Unlock()
	var synced []*Finding
	keyChanged := false
	for _, r := range fc.renames {
		if _, err := os.Lstat(r.to); err == nil {
			r.f.Detail += "; not repaired: " + filepath.Base(r.to) + " exists"
			continue
		}
		if err := os.Rename(r.from, r.to); err != nil {
			continue // moved or expunged meanwhile
		}
		synced = append(synced, r.f)
		keyChanged = keyChanged || r.newKey
	}
	// Rewrite before the sync: the sync may append records, and must do so
	// to a version 3 list without a torn tail. A renamed key's old record
	// goes here; the sync gives the file its new UID.
	if len(fc.needRewrite) > 0 || keyChanged {
		err := fc.rewriteUIDList()
		for _, f := range fc.needRewrite {
			f.Repaired = err == nil
		}
	}
	synced = append(synced, fc.needSync...)
	if len(synced) > 0 {
		var err error
		if ix.loaded {
			_, err = ix.syncLocked(true, true)
		} else {
			err = ix.ensureLoaded()
		}
		for _, f := range synced {
			f.Repaired = err == nil
		}
	}
}

// checkUserState returns the user's shared state if this Store has it (so
// the sync notifies its watchers), else a private one that sets nothing up
// (User would create default folders: no business of a check).
func (s *Store) checkUserState(user, dir string) *userState {
	s.mu.Lock()
	st := s.users[user]
	s.mu.Unlock()
	if st == nil {
		st = &userState{s: s, name: user, dir: dir}
		st.hub.init()
	}
	return st
}

// rewriteUIDList drops the records of files on neither of two listings
// and second records of one file, under the dotlock, as Dovecot does when
// it rewrites the list. Nothing is added or renumbered.
func (fc *folderCheck) rewriteUIDList() error {
	s := fc.c.s
	lk, err := s.lockUIDList(fc.dir)
	if err != nil {
		return err
	}
	defer lk.unlock()
	p := filepath.Join(fc.dir, "dovecot-uidlist")
	data, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	ul, err := parseUIDList(data)
	if err != nil {
		return err
	}
	ix := &index{dir: fc.dir}
	present, err := ix.diskKeys()
	if err != nil {
		return err
	}
	again, err := ix.diskKeys()
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	kept := ul.recs[:0]
	for _, r := range ul.recs {
		if seen[r.key] || !(present[r.key] || again[r.key]) {
			continue
		}
		seen[r.key] = true
		kept = append(kept, r)
	}
	ul.recs = kept
	if err := s.aw.WriteFile(p, ul.marshal()); err != nil {
		return fmt.Errorf("mailstore: check: rewrite %s: %w", p, err)
	}
	return nil
}
