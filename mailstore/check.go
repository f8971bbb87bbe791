package mailstore

// Check verifies a tree (mailsuite check-store) and repairs what is safe to
// repair, also while the server runs.
//
// Invariants:
//   - A folder is read under the locks the store itself uses: its
//     in-process index mutex (when this Store has the folder open), then
//     dovecot-uidlist.lock. They are held only while dovecot-uidlist and
//     dovecot-keywords are read and new/ then cur/ listed (in that order, so
//     a message moved from new/ to cur/ meanwhile is seen at least once);
//     message files are read with no lock held.
//   - Without Repair nothing changes, except that a stale
//     dovecot-uidlist.lock is broken when the check takes the lock, as every
//     user of the folder does.
//   - Repairs never assign a UID themselves: files that need one get it from
//     the store's own sync, and dovecot-uidlist is only rewritten under its
//     lock, dropping records, never adding or renumbering one.
//   - Only what the store itself would treat as a mistake counts as a
//     problem. A record whose file is gone (an expunge: neither the store
//     nor Dovecot rewrites the list for it), a file in new/ without a UID
//     (delivered, not yet seen by a session) and a header next UID lower
//     than an appended record (Dovecot appends without rewriting the
//     header) are normal and are notes or counts, not problems.

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// CheckOptions configure a check.
type CheckOptions struct {
	// Root is the tree to check; only the package-level Check reads it
	// (Store.Check checks its own root).
	Root string
	// User limits the check to one user's maildir (an address); "" checks
	// every user.
	User string
	// Repair fixes what is safe to fix (see the Kind constants).
	Repair bool
	// Now is the clock for file ages (default time.Now).
	Now func() time.Time
	// Logger for the store's own warnings (package-level Check only);
	// default slog.Default().
	Logger *slog.Logger
}

// Finding kinds. "Repair" says what Repair does; the others are reported
// only.
const (
	KindUIDListMissing  = "uidlist-missing"    // files but no dovecot-uidlist. Repair: sync creates it
	KindUIDListBad      = "uidlist-unreadable" // Repair: sync rebuilds it (new UIDVALIDITY), as the store would
	KindUIDListDup      = "uidlist-duplicate"  // a file listed twice. Repair: keep its lowest UID, the one the store uses
	KindUIDListTorn     = "uidlist-torn"       // note: an append cut short. Repair: rewrite
	KindUIDListV1       = "uidlist-v1"         // old format. Repair: rewrite as version 3
	KindStaleRecords    = "stale-records"      // note: records of expunged files. Repair: drop them, as Dovecot does
	KindNoUID           = "no-uid"             // a cur/ file without a UID. Repair: sync assigns one
	KindDuplicate       = "duplicate"          // one base name twice in new/ and cur/
	KindBadName         = "bad-name"           // a name or entry the store cannot use
	KindBadInfo         = "bad-info"           // cur/ info other than ":2,". Repair: sync renames it to ":2,"
	KindBadFlags        = "bad-flags"          // flag letters that are no flag
	KindUnsortedFlags   = "unsorted-flags"     // Repair: rename with the letters sorted
	KindInfoInNew       = "info-in-new"        // a new/ file with an info part. Repair: move it to cur/ (":2," info kept)
	KindUndefinedKw     = "undefined-keyword"  // a keyword letter dovecot-keywords does not define
	KindKeywordsBad     = "keywords-unreadable"
	KindSize            = "size"             // ,S= or ,W= wrong. Repair: rename with the right sizes (the message gets a new UID)
	KindOldTemp         = "old-temp"         // tmp/ file older than 36 hours, or index temp file older than an hour. Repair: remove
	KindStaleLock       = "stale-lock"       // Repair: remove (a stale dovecot-uidlist.lock is broken by taking the lock)
	KindNoMarker        = "no-maildirfolder" // Repair: create the marker
	KindMissingDir      = "missing-dir"      // cur/, new/ or tmp/ missing. Repair: create
	KindBadFolderName   = "bad-folder-name"  // a ".Name" directory that is no folder name
	KindBadUserDir      = "bad-user-dir"     // a directory that is no user's canonical maildir
	KindFolderUnchecked = "unchecked"        // the folder could not be read or locked
)

// tmpMaxAge is the maildir convention for abandoned tmp/ files.
const tmpMaxAge = 36 * time.Hour

// structureRecheck is how long a folder that lacks cur/, new/, tmp/ or its
// marker is given to be finished by whoever is creating it.
const structureRecheck = 50 * time.Millisecond

// Finding is one thing a check found.
type Finding struct {
	User   string // canonical address; "" for the tree's own temp dir
	Folder string
	Path   string // relative to the root
	Kind   string
	Detail string
	// Note marks a finding that is harmless (the store or Dovecot cleans
	// it up by itself): reported, never a problem.
	Note     bool
	Repaired bool
}

func (f Finding) String() string {
	tag := "problem"
	switch {
	case f.Repaired:
		tag = "repaired"
	case f.Note:
		tag = "note"
	}
	where := f.Path
	if f.User != "" {
		where += " (" + f.User + " " + f.Folder + ")"
	}
	return fmt.Sprintf("%s: %s: %s: %s", tag, f.Kind, where, f.Detail)
}

// Report is what a check found.
type Report struct {
	Users, Folders, Messages int
	Pending                  int // files in new/ still waiting for a session to give them a UID
	Findings                 []Finding
}

// Problems counts findings that are neither notes nor repaired.
func (r Report) Problems() int {
	n := 0
	for _, f := range r.Findings {
		if !f.Note && !f.Repaired {
			n++
		}
	}
	return n
}

// Repaired counts repaired findings.
func (r Report) Repaired() int {
	n := 0
	for _, f := range r.Findings {
		if f.Repaired {
			n++
		}
	}
	return n
}

// Check verifies the tree at opts.Root from outside any running server
// (the check-store command). Do not call it in a process that has a Store
// open on the same root: use that Store's Check method, which shares its
// locks (two Stores of one process take each other's dotlocks for stale
// ones left by an earlier run of the same PID).
//
// Without Repair it changes nothing. With Repair it opens the tree as a
// Store (which, as at every server start, removes delivery temp files
// older than 36 hours, reported as repaired) and repairs through it.
func Check(opts CheckOptions) (Report, error) {
	if opts.Root == "" {
		return Report{}, errors.New("mailstore: check: no root given")
	}
	root, err := filepath.Abs(opts.Root)
	if err != nil {
		return Report{}, fmt.Errorf("mailstore: check: %w", err)
	}
	if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
		if err == nil {
			err = errors.New("not a directory")
		}
		return Report{}, fmt.Errorf("mailstore: check: no store at %s: %w", root, err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	if !opts.Repair {
		// A Store that only takes dotlocks: Open would already clean
		// the root temp dir and start the poller.
		host, _ := os.Hostname()
		s := &Store{log: log, root: root, tmpDir: filepath.Join(root, tmpDirName),
			pid: os.Getpid(), lockHost: host, opened: time.Now()}
		return s.Check(opts)
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	tmp := filepath.Join(root, tmpDirName)
	old := oldFiles(tmp, now().Add(-tmpMaxAge))
	s, err := Open(Options{Root: root, Logger: log})
	if err != nil {
		return Report{}, err
	}
	defer s.Close()
	var removed []Finding
	for _, n := range old {
		if _, err := os.Lstat(filepath.Join(tmp, n)); errors.Is(err, os.ErrNotExist) {
			removed = append(removed, Finding{Path: filepath.Join(tmpDirName, n), Kind: KindOldTemp,
				Detail: "delivery temp file older than 36 hours", Repaired: true})
		}
	}
	rep, err := s.Check(opts)
	rep.Findings = append(removed, rep.Findings...)
	return rep, err
}

// checker is one run of Check.
type checker struct {
	s        *Store
	repair   bool
	now      time.Time
	rep      Report
	findings []*Finding // pointers stay valid while repairs mark them
}

// Check verifies this store's tree (or one user's maildir) beside the
// sessions using it and, with opts.Repair, repairs what is safe to repair.
// Findings about single folders do not stop the check; the error is for
// a tree that cannot be listed at all.
func (s *Store) Check(opts CheckOptions) (Report, error) {
	if err := s.checkOpen(); err != nil {
		return Report{}, err
	}
	c := &checker{s: s, repair: opts.Repair, now: time.Now()}
	if opts.Now != nil {
		c.now = opts.Now()
	}
	c.checkTemp("", "", s.tmpDir, tmpMaxAge)
	users, err := c.users(opts.User)
	if err == nil {
		for _, u := range users {
			c.checkUser(u[0], u[1])
		}
	}
	for _, f := range c.findings {
		c.rep.Findings = append(c.rep.Findings, *f)
	}
	return c.rep, err
}

func (c *checker) add(f Finding) *Finding {
	p := &f
	c.findings = append(c.findings, p)
	return p
}

func (c *checker) rel(p string) string {
	if r, err := filepath.Rel(c.s.root, p); err == nil {
		return r
	}
	return p
}

// users lists {address, maildir} pairs in name order.
func (c *checker) users(only string) ([][2]string, error) {
	if only != "" {
		local, domain, err := canonicalUser(only)
		if err != nil {
			return nil, err
		}
		dir := filepath.Join(c.s.root, domain, local)
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("mailstore: check %s: no maildir at %s", only, dir)
		}
		return [][2]string{{local + "@" + domain, dir}}, nil
	}
	domains, err := os.ReadDir(c.s.root)
	if err != nil {
		return nil, fmt.Errorf("mailstore: check: %w", err)
	}
	var out [][2]string
	for _, d := range domains {
		if !d.IsDir() || strings.HasPrefix(d.Name(), ".") {
			continue
		}
		locals, err := os.ReadDir(filepath.Join(c.s.root, d.Name()))
		if err != nil {
			return nil, fmt.Errorf("mailstore: check: %w", err)
		}
		for _, l := range locals {
			if !l.IsDir() {
				continue
			}
			dir := filepath.Join(c.s.root, d.Name(), l.Name())
			local, domain, err := canonicalUser(l.Name() + "@" + d.Name())
			if err != nil || local != l.Name() || domain != d.Name() {
				c.add(Finding{Path: c.rel(dir), Kind: KindBadUserDir,
					Detail: "not the maildir of any address (the store uses lower-case, valid addresses only)"})
				continue
			}
			out = append(out, [2]string{local + "@" + domain, dir})
		}
	}
	return out, nil
}

func (c *checker) checkUser(user, dir string) {
	c.rep.Users++
	c.checkFolder(user, dir, Inbox, dir, false)
	ents, err := os.ReadDir(dir)
	if err != nil {
		c.add(Finding{User: user, Path: c.rel(dir), Kind: KindFolderUnchecked, Detail: err.Error()})
		return
	}
	for _, e := range ents {
		n := e.Name()
		if !e.IsDir() || !strings.HasPrefix(n, ".") || strings.HasPrefix(n, "..") {
			continue // ".." prefixes are folders being deleted
		}
		name, ok := folderNameFromDir(n)
		if !ok || name == Inbox || folderDirName(strings.Split(name, Separator)) != n {
			c.add(Finding{User: user, Path: c.rel(filepath.Join(dir, n)), Kind: KindBadFolderName,
				Detail: "not a folder name in modified UTF-7 that the store would write: invisible to clients"})
			continue
		}
		c.checkFolder(user, dir, name, filepath.Join(dir, n), true)
	}
}

// oldFiles lists the regular files in dir last modified before cutoff.
func oldFiles(dir string, cutoff time.Time) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() && fi.ModTime().Before(cutoff) {
			out = append(out, e.Name())
		}
	}
	return out
}

// checkTemp reports (and with repair removes) files in a temp directory
// older than maxAge: nothing in tmp/ is ever visible to readers.
func (c *checker) checkTemp(user, folder, dir string, maxAge time.Duration) {
	for _, n := range oldFiles(dir, c.now.Add(-maxAge)) {
		p := filepath.Join(dir, n)
		f := c.add(Finding{User: user, Folder: folder, Path: c.rel(p), Kind: KindOldTemp,
			Detail: fmt.Sprintf("temp file older than %v, never visible to readers", maxAge)})
		if c.repair {
			f.Repaired = os.Remove(p) == nil
		}
	}
}

// checkLeftovers looks at the folder directory for what an interrupted
// dotlock (its temp link file) or atomic write (its temp file) left.
func (c *checker) checkLeftovers(user, folder, dir string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	atomicTemps := []string{".dovecot-uidlist.tmp", ".dovecot-keywords.tmp", "." + cacheFile + ".tmp",
		"." + specialUseFile + ".tmp", "." + subscriptionsFile + ".tmp"}
	for _, e := range ents {
		n := e.Name()
		fi, err := e.Info()
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		age := c.now.Sub(fi.ModTime())
		var f *Finding
		switch {
		case strings.HasPrefix(n, ".dovecot-uidlist.lock.") && age > dotlockStale:
			f = c.add(Finding{Kind: KindStaleLock, Detail: "temp file of a dotlock whose taker is gone"})
		case slices.ContainsFunc(atomicTemps, func(p string) bool { return strings.HasPrefix(n, p) }) && age > time.Hour:
			f = c.add(Finding{Kind: KindOldTemp, Detail: "temp file of an interrupted index file write"})
		default:
			continue
		}
		p := filepath.Join(dir, n)
		f.User, f.Folder, f.Path = user, folder, c.rel(p)
		if c.repair {
			f.Repaired = os.Remove(p) == nil
		}
	}
}

func (c *checker) checkFolder(user, userDir, name, dir string, sub bool) {
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return // deleted or renamed since the listing
	}
	c.rep.Folders++
	at := func(kind, path, detail string) *Finding {
		return c.add(Finding{User: user, Folder: name, Path: c.rel(path), Kind: kind, Detail: detail})
	}
	marker := filepath.Join(dir, "maildirfolder")
	structure := func() (missing []string, noMarker bool) {
		for _, d := range []string{"cur", "new", "tmp"} {
			if fi, err := os.Stat(filepath.Join(dir, d)); err != nil || !fi.IsDir() {
				missing = append(missing, d+"/")
			}
		}
		_, err := os.Lstat(marker)
		return missing, sub && errors.Is(err, os.ErrNotExist)
	}
	missing, noMarker := structure()
	if len(missing) > 0 || noMarker {
		// A folder being created (here or by another process) lacks its
		// parts for a moment: look again before calling it damaged.
		time.Sleep(structureRecheck)
		if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
			return
		}
		missing, noMarker = structure()
	}
	if len(missing) > 0 {
		f := at(KindMissingDir, dir, "no "+strings.Join(missing, ", "))
		if c.repair {
			f.Repaired = makeMaildir(dir, sub) == nil
		}
		if !f.Repaired && missing[0] == "cur/" {
			return // nothing the store would show
		}
	}
	if noMarker {
		f := at(KindNoMarker, marker, "sub-folder without its maildirfolder marker")
		if c.repair {
			f.Repaired = os.WriteFile(marker, nil, 0o600) == nil
		}
	}
	c.checkTemp(user, name, filepath.Join(dir, "tmp"), tmpMaxAge)
	c.checkLeftovers(user, name, dir)
	fc := &folderCheck{c: c, user: user, userDir: userDir, name: name, dir: dir}
	lockPath := filepath.Join(dir, "dovecot-uidlist.lock")
	var staleLock *Finding
	if _, stale := c.s.staleLock(lockPath); stale {
		staleLock = at(KindStaleLock, lockPath, "dovecot-uidlist.lock of a process that is gone: broken by taking the lock")
	}
	sn, err := c.snapshot(dir)
	if err != nil {
		if _, serr := os.Stat(dir); !errors.Is(serr, os.ErrNotExist) {
			at(KindFolderUnchecked, dir, err.Error())
		}
		return
	}
	if staleLock != nil {
		staleLock.Repaired = true
	}
	fc.analyse(sn)
	if c.repair {
		fc.repair()
	}
}
