package mailstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/mailsuite/mailsuite/internal/atomicfile"
)

// userState is shared by every User handle of one user in a Store.
type userState struct {
	s    *Store
	name string
	dir  string

	mu      sync.Mutex // folder create/delete/rename, subscriptions, special use
	special map[string]SpecialUse

	hub   hub
	quota quotaState

	newSync atomic.Pointer[dirSyncer] // INBOX new/ (see Store.newSyncer)

	dropMu     sync.Mutex
	dropLocked bool
}

// User is one user's maildir.
type User struct {
	st *userState
	s  *Store
}

// specialUseFile keeps which folder has which special use: Dovecot keeps
// this in its configuration, which we do not share.
const specialUseFile = "mailsuite-specialuse"

// canonicalUser lower-cases and validates an address so that it maps to
// exactly one directory under the root and can never name anything else.
func canonicalUser(user string) (local, domain string, err error) {
	bad := func(why string) (string, string, error) {
		return "", "", fmt.Errorf("%w: %q: %s", ErrBadUser, user, why)
	}
	u := strings.ToLower(user)
	at := strings.LastIndexByte(u, '@')
	if at < 0 {
		return bad("no domain")
	}
	local, domain = u[:at], u[at+1:]
	for _, part := range []string{local, domain} {
		if part == "" || len(part) > 200 {
			return bad("empty or too long part")
		}
		if part[0] == '.' {
			return bad("leading dot")
		}
		if !utf8.ValidString(part) {
			return bad("not UTF-8")
		}
		for _, r := range part {
			if r < 0x20 || r == 0x7f || r == '/' || r == '\\' {
				return bad("forbidden character")
			}
		}
	}
	if strings.Contains(domain, "..") || strings.ContainsRune(domain, '@') {
		return bad("bad domain")
	}
	return local, domain, nil
}

// User returns the handle of user's maildir (canonical address), creating the
// maildir and the default folders on first use.
func (s *Store) User(user string) (*User, error) {
	st, err := s.userState(user)
	if err != nil {
		return nil, err
	}
	return &User{st: st, s: s}, nil
}

func (s *Store) userState(user string) (*userState, error) {
	local, domain, err := canonicalUser(user)
	if err != nil {
		return nil, err
	}
	name := local + "@" + domain
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	st := s.users[name]
	if st == nil {
		st = &userState{s: s, name: name, dir: filepath.Join(s.root, domain, local)}
		st.hub.init()
		s.users[name] = st
	}
	s.mu.Unlock()
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.special == nil {
		if err := st.setUp(); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// setUp creates the maildir and, the first time ever (no special-use file
// yet), the default folders. Caller holds st.mu.
func (st *userState) setUp() error {
	if err := makeMaildir(st.dir, false); err != nil {
		return fmt.Errorf("mailstore: create maildir of %s: %w", st.name, err)
	}
	data, err := os.ReadFile(filepath.Join(st.dir, specialUseFile))
	if err == nil {
		st.special = parseSpecialUse(data)
		return nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("mailstore: read special use of %s: %w", st.name, err)
	}
	st.special = make(map[string]SpecialUse)
	for _, d := range DefaultFolders {
		if err := makeMaildir(filepath.Join(st.dir, folderDirName([]string{d.Name})), true); err != nil {
			return fmt.Errorf("mailstore: create %s of %s: %w", d.Name, st.name, err)
		}
		st.special[d.Name] = d.Use
	}
	if err := st.writeSpecialUse(); err != nil {
		return err
	}
	// Subscribe the defaults, as clients expect to see them.
	names := make([]string, 0, len(DefaultFolders)+1)
	names = append(names, Inbox)
	for _, d := range DefaultFolders {
		names = append(names, d.Name)
	}
	return st.addSubscriptions(names)
}

func parseSpecialUse(data []byte) map[string]SpecialUse {
	m := make(map[string]SpecialUse)
	for line := range strings.SplitSeq(string(data), "\n") {
		use, name, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		switch u := SpecialUse(use); u {
		case UseSent, UseDrafts, UseTrash, UseJunk, UseArchive:
			if n, _, err := checkFolderName(name); err == nil {
				m[n] = u
			}
		}
	}
	return m
}

func (st *userState) writeSpecialUse() error {
	var b strings.Builder
	for name, use := range st.special {
		fmt.Fprintf(&b, "%s %s\n", use, name)
	}
	if err := st.s.aw.WriteFile(filepath.Join(st.dir, specialUseFile), []byte(b.String())); err != nil {
		return fmt.Errorf("mailstore: write special use of %s: %w", st.name, err)
	}
	return nil
}

// makeMaildir creates dir with cur/ new/ tmp/ (and the maildirfolder
// marker for sub-folders), fsyncing what it creates.
func makeMaildir(dir string, sub bool) error {
	if err := mkdirAllSync(dir); err != nil {
		return err
	}
	created := false
	for _, d := range []string{"tmp", "new", "cur"} {
		err := os.Mkdir(filepath.Join(dir, d), 0o700)
		if err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
		created = created || err == nil
	}
	if sub {
		f, err := os.OpenFile(filepath.Join(dir, "maildirfolder"), os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		f.Close()
	}
	if created {
		return atomicfile.SyncDir(dir)
	}
	return nil
}

// mkdirAllSync is os.MkdirAll that fsyncs each parent it adds an entry to.
func mkdirAllSync(dir string) error {
	if st, err := os.Stat(dir); err == nil {
		if !st.IsDir() {
			return fmt.Errorf("%s: not a directory", dir)
		}
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := mkdirAllSync(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	return atomicfile.SyncDir(parent)
}

// Name returns the user's canonical address.
func (u *User) Name() string { return u.st.name }

// Folder opens a folder handle. Name is case-insensitive only for INBOX.
func (u *User) Folder(name string) (*Folder, error) {
	if err := u.s.checkOpen(); err != nil {
		return nil, err
	}
	canon, dir, err := u.st.folderDir(name)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, "cur")); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s", ErrNoSuchFolder, canon)
		}
		return nil, fmt.Errorf("mailstore: open folder %s: %w", canon, err)
	}
	return &Folder{u: u, name: canon, ix: u.s.index(u.st, canon, dir)}, nil
}

// folderDir validates name and returns its canonical form and directory.
func (st *userState) folderDir(name string) (string, string, error) {
	canon, parts, err := checkFolderName(name)
	if err != nil {
		return "", "", err
	}
	if canon == Inbox {
		return canon, st.dir, nil
	}
	return canon, filepath.Join(st.dir, folderDirName(parts)), nil
}
