package mailstore

// Folder management: list, create, delete, rename (RFC 3501 §6.3).

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mailsuite/mailsuite/internal/atomicfile"
)

// deletedPrefix names folders being removed: "..x" can never decode to a
// folder name (empty first component), so Dovecot and we both skip it.
const deletedPrefix = "..mailsuite-deleted-"

// folderNames lists the names of folders that exist on disk (not INBOX).
func (st *userState) folderNames() ([]string, error) {
	ents, err := os.ReadDir(st.dir)
	if err != nil {
		return nil, fmt.Errorf("mailstore: list folders of %s: %w", st.name, err)
	}
	var names []string
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		n, ok := folderNameFromDir(e.Name())
		if !ok || n == Inbox {
			continue
		}
		names = append(names, n)
	}
	return names, nil
}

// Folders lists all folders, INBOX first.
func (u *User) Folders() ([]FolderInfo, error) {
	if err := u.s.checkOpen(); err != nil {
		return nil, err
	}
	st := u.st
	st.mu.Lock()
	defer st.mu.Unlock()
	names, err := st.folderNames()
	if err != nil {
		return nil, err
	}
	subs, err := st.readSubscriptions()
	if err != nil {
		return nil, err
	}
	exists := map[string]bool{Inbox: true}
	for _, n := range names {
		exists[n] = true
	}
	all := map[string]bool{}
	for n := range exists {
		all[n] = true
		// Hierarchy levels without a directory of their own.
		for i := strings.LastIndex(n, Separator); i > 0; i = strings.LastIndex(n[:i], Separator) {
			all[n[:i]] = true
		}
	}
	sorted := make([]string, 0, len(all))
	for n := range all {
		if n != Inbox {
			sorted = append(sorted, n)
		}
	}
	sort.Strings(sorted)
	sorted = append([]string{Inbox}, sorted...)
	hasChild := map[string]bool{}
	for n := range all {
		if i := strings.LastIndex(n, Separator); i > 0 {
			hasChild[n[:i]] = true
		}
	}
	out := make([]FolderInfo, 0, len(sorted))
	for _, n := range sorted {
		out = append(out, FolderInfo{
			Name: n, SpecialUse: st.special[n], Subscribed: subs[n],
			HasChildren: hasChild[n], NoSelect: !exists[n],
		})
	}
	return out, nil
}

// folderName checks the store is open and name is valid, and returns the
// canonical name and its components.
func (u *User) folderName(name string) (string, []string, error) {
	if err := u.s.checkOpen(); err != nil {
		return "", nil, err
	}
	return checkFolderName(name)
}

// CreateFolder creates name (and missing parents). use may be UseNone.
func (u *User) CreateFolder(name string, use SpecialUse) error {
	canon, parts, err := u.folderName(name)
	if err != nil {
		return err
	}
	if canon == Inbox {
		return fmt.Errorf("%w: %s", ErrFolderExists, canon)
	}
	switch use {
	case UseNone, UseSent, UseDrafts, UseTrash, UseJunk, UseArchive:
	default:
		return fmt.Errorf("mailstore: create %s: unknown special use %q: %w", canon, use, ErrNotPermitted)
	}
	st := u.st
	st.mu.Lock()
	defer st.mu.Unlock()
	dir := filepath.Join(st.dir, folderDirName(parts))
	if _, err := os.Stat(dir); err == nil {
		return fmt.Errorf("%w: %s", ErrFolderExists, canon)
	}
	for i := 1; i < len(parts); i++ {
		if parts[0] == Inbox && i == 1 {
			continue // INBOX itself exists
		}
		if err := makeMaildir(filepath.Join(st.dir, folderDirName(parts[:i])), true); err != nil {
			return fmt.Errorf("mailstore: create %s: %w", canon, err)
		}
	}
	if err := makeMaildir(dir, true); err != nil {
		return fmt.Errorf("mailstore: create %s: %w", canon, err)
	}
	if use != UseNone {
		st.special[canon] = use
		if err := st.writeSpecialUse(); err != nil {
			return err
		}
	}
	return nil
}

// DeleteFolder deletes name and its messages. INBOX: ErrNotPermitted. A
// folder with children is deleted and its children stay; the name then
// lists as NoSelect (RFC 3501 §6.3.4), as in Dovecot's Maildir++.
func (u *User) DeleteFolder(name string) error {
	canon, parts, err := u.folderName(name)
	if err != nil {
		return err
	}
	if canon == Inbox {
		return fmt.Errorf("mailstore: delete INBOX: %w", ErrNotPermitted)
	}
	st := u.st
	st.mu.Lock()
	defer st.mu.Unlock()
	dir := filepath.Join(st.dir, folderDirName(parts))
	if _, err := os.Stat(dir); err != nil {
		return fmt.Errorf("%w: %s", ErrNoSuchFolder, canon)
	}
	// Rename away first so the folder disappears atomically, then remove.
	trash := filepath.Join(st.dir, deletedPrefix+strconv.FormatInt(time.Now().UnixNano(), 36))
	if err := os.Rename(dir, trash); err != nil {
		return fmt.Errorf("mailstore: delete %s: %w", canon, err)
	}
	u.s.dropIndexes(dir)
	if err := atomicfile.SyncDir(st.dir); err != nil {
		return fmt.Errorf("mailstore: delete %s: %w", canon, err)
	}
	if err := os.RemoveAll(trash); err != nil {
		u.s.log.Warn("mailstore: removing deleted folder", "dir", trash, "err", err)
	}
	st.quota.invalidate()
	// Its messages are gone: a session that has it selected syncs, finds
	// no folder, and ends (IMAP's BYE, as Dovecot does).
	st.hub.publish(Event{User: st.name, Folder: canon, Kind: EventExpunge})
	if _, ok := st.special[canon]; ok {
		delete(st.special, canon)
		return st.writeSpecialUse()
	}
	return nil
}

// RenameFolder renames a folder and its children. Renaming INBOX moves its
// messages into a new folder and leaves INBOX empty (RFC 3501 §6.3.5).
func (u *User) RenameFolder(oldName, newName string) error {
	oldCanon, _, err := u.folderName(oldName)
	if err != nil {
		return err
	}
	newCanon, newParts, err := checkFolderName(newName)
	if err != nil {
		return err
	}
	if newCanon == Inbox {
		return fmt.Errorf("%w: %s", ErrFolderExists, newCanon)
	}
	if newCanon == oldCanon || strings.HasPrefix(newCanon, oldCanon+Separator) {
		return fmt.Errorf("mailstore: rename %s to %s: %w", oldCanon, newCanon, ErrNotPermitted)
	}
	st := u.st
	st.mu.Lock()
	defer st.mu.Unlock()
	newDir := filepath.Join(st.dir, folderDirName(newParts))
	if _, err := os.Stat(newDir); err == nil {
		return fmt.Errorf("%w: %s", ErrFolderExists, newCanon)
	}
	if oldCanon == Inbox {
		return st.renameInbox(newCanon, newDir)
	}
	names, err := st.folderNames()
	if err != nil {
		return err
	}
	var moves [][2]string // old name, new name
	for _, n := range names {
		if n == oldCanon || strings.HasPrefix(n, oldCanon+Separator) {
			moves = append(moves, [2]string{n, newCanon + n[len(oldCanon):]})
		}
	}
	if len(moves) == 0 {
		return fmt.Errorf("%w: %s", ErrNoSuchFolder, oldCanon)
	}
	var dropped []string
	for _, mv := range moves {
		_, from, _ := st.folderDir(mv[0])
		_, to, err := st.folderDir(mv[1])
		if err != nil {
			return err
		}
		if _, err := os.Stat(to); err == nil {
			return fmt.Errorf("%w: %s", ErrFolderExists, mv[1])
		}
		if err := os.Rename(from, to); err != nil {
			return fmt.Errorf("mailstore: rename %s to %s: %w", mv[0], mv[1], err)
		}
		dropped = append(dropped, from)
		if use, ok := st.special[mv[0]]; ok {
			delete(st.special, mv[0])
			st.special[mv[1]] = use
		}
	}
	u.s.dropIndexes(dropped...)
	if err := atomicfile.SyncDir(st.dir); err != nil {
		return fmt.Errorf("mailstore: rename %s: %w", oldCanon, err)
	}
	for _, mv := range moves { // as in DeleteFolder: the old names are gone
		st.hub.publish(Event{User: st.name, Folder: mv[0], Kind: EventExpunge})
	}
	return st.writeSpecialUse()
}

// renameInbox creates newName and moves every INBOX message into it; INBOX
// stays, empty, and its sub-folders stay where they are.
func (st *userState) renameInbox(newName, newDir string) error {
	if err := makeMaildir(newDir, true); err != nil {
		return fmt.Errorf("mailstore: rename INBOX: %w", err)
	}
	for _, sub := range []string{"new", "cur"} {
		names, err := readDirNames(filepath.Join(st.dir, sub))
		if err != nil {
			return fmt.Errorf("mailstore: rename INBOX: %w", err)
		}
		for _, n := range names {
			key, info, _ := splitFileName(n)
			if !validKey(key) {
				continue
			}
			if err := os.Rename(filepath.Join(st.dir, sub, n), filepath.Join(newDir, "cur", fileName(key, info))); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("mailstore: rename INBOX to %s: %w", newName, err)
			}
		}
	}
	for _, d := range []string{filepath.Join(newDir, "cur"), filepath.Join(st.dir, "new"), filepath.Join(st.dir, "cur")} {
		if err := atomicfile.SyncDir(d); err != nil {
			return fmt.Errorf("mailstore: rename INBOX: %w", err)
		}
	}
	if ix := st.s.loadedIndex(st.dir); ix != nil {
		ix.mu.Lock()
		if ix.loaded {
			ix.syncLocked(false, true)
		}
		ix.mu.Unlock()
	}
	return nil
}
