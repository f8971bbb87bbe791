package mailstore

// Delivery: write once, as an unnamed file (O_TMPFILE, see
// tmpfile_linux.go) or else a named one in the root's tmp directory; fsync;
// hard-link into every recipient's new/; fsync each new/ (shared with
// concurrent deliveries: dirsync.go); drop the temp name if any. Only then
// does Commit return nil. A failure removes every link already made.
//
// Invariants (UID order: a message whose Commit returned before another's
// began never gets the higher UID):
//   - The name in new/ is made in Commit, just before linking, by newKey,
//     whose time never goes backwards; Sync numbers files it finds in
//     name-time order.
//   - After linking, Commit takes the index mutex of a loaded INBOX index
//     (to mark new/ dirty) before returning, so a Sync whose readdir may
//     have missed this link ends before any later delivery is linked. The
//     index is looked up after the link: one created later starts its
//     first readdir after the link and sees it.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Delivery is one message being delivered to one or more users. It is
// written once (to a temp file, fsynced) and hard-linked into each
// recipient's INBOX/new on Commit.
type Delivery struct {
	s    *Store
	tmp  *tempMessage
	done bool
}

// BeginDelivery starts a delivery.
func (s *Store) BeginDelivery() (*Delivery, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	t, err := s.createDeliveryFile(s.tmpDir)
	if err != nil {
		return nil, err
	}
	return &Delivery{s: s, tmp: t}, nil
}

// Write appends message bytes (headers and body, as they will be stored).
func (d *Delivery) Write(p []byte) (int, error) {
	if d.done {
		return 0, fmt.Errorf("mailstore: write after commit or abort: %w", ErrNotPermitted)
	}
	return d.tmp.Write(p)
}

// Commit makes the message durable in every user's INBOX (fsync the file,
// link into each new/, fsync each directory) and only then returns nil. It is
// all or nothing: on error every link already made is removed and nothing is
// visible. Watchers are notified after success. Commit checks quotas: a user
// already over quota (before this message, allowing QuotaGrace) fails the
// whole commit with an error wrapping ErrQuota; callers should have checked
// CheckQuota at RCPT time.
func (d *Delivery) Commit(ctx context.Context, users []string) error {
	if d.done {
		return fmt.Errorf("mailstore: commit after commit or abort: %w", ErrNotPermitted)
	}
	d.done = true
	defer d.tmp.discard()
	if err := d.s.checkOpen(); err != nil {
		return err
	}
	if len(users) == 0 {
		return fmt.Errorf("mailstore: commit without recipients: %w", ErrNotPermitted)
	}
	if err := d.tmp.finish(); err != nil {
		return err
	}
	size, vsize := d.tmp.cnt.size, d.tmp.cnt.vsize
	states := make([]*userState, 0, len(users))
	for _, u := range users {
		st, err := d.s.userState(u)
		if err != nil {
			return err
		}
		if slices.Contains(states, st) {
			continue // two addresses of one user: one copy
		}
		if err := st.checkQuota(size, true, true); err != nil {
			return err
		}
		states = append(states, st)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mailstore: commit: %w", err)
	}
	// The name, and so the time in it, is made now, not at BeginDelivery:
	// Sync gives UIDs in name-time order, and a message committed before
	// another must not get a higher UID (smtpd opens deliveries early).
	name := sizedKey(d.s.newKey(time.Now()), size, vsize)
	linked := 0 // states[:linked] have the link
	undo := func() {
		for _, st := range states[:linked] {
			os.Remove(st.dir + "/new/" + name)
		}
		for _, st := range states[:linked] {
			d.s.newSyncer(st).sync()
		}
	}
	for _, st := range states {
		if err := d.s.linkNew(d.tmp.link, st.dir+"/new/"+name); err != nil {
			undo()
			return fmt.Errorf("mailstore: deliver to %s: %w", st.name, err)
		}
		linked++
	}
	var resync func() error
	if d.tmp.unnamed != nil && d.s.linkSync {
		// The links raised the inode's link count from 0. Where there is
		// no journal (ext2, ext4 without one), fsyncing new/ does not write
		// the inode, and an inode on disk with no links is a deleted one:
		// fsync the file again, beside the directories.
		resync = d.tmp.f.Sync
	}
	if err := d.s.syncNewDirs(states, resync); err != nil {
		undo()
		return fmt.Errorf("mailstore: deliver: fsync: %w", err)
	}
	for _, st := range states {
		st.quota.added(filepath.Join(st.dir, "new"), size)
		if ix := d.s.loadedIndex(st.dir); ix != nil {
			ix.mu.Lock()
			ix.newDirty = true
			ix.mu.Unlock()
		}
		// The UID is assigned by the next Sync; watchers sync and compare.
		st.hub.publish(Event{User: st.name, Folder: Inbox, Kind: EventAdded})
	}
	return nil
}

// syncNewDirs fsyncs the new/ of each recipient, and runs also (if not
// nil), in parallel (one goroutine less: the last one runs inline).
func (s *Store) syncNewDirs(states []*userState, also func() error) error {
	fns := make([]func() error, 0, len(states)+1)
	for _, st := range states {
		fns = append(fns, s.newSyncer(st).sync)
	}
	if also != nil {
		fns = append(fns, also)
	}
	last := len(fns) - 1
	errs := make(chan error, last)
	for _, fn := range fns[:last] {
		go func() { errs <- fn() }()
	}
	firstErr := fns[last]()
	for range last {
		if err := <-errs; err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

// Linker is an optional interface of an Options.FS: if implemented, the
// store makes delivery hard links from named temp files through it
// (failure injection).
type Linker interface {
	Link(oldname, newname string) error
}

// UnnamedFS is an optional interface of an Options.FS: a file system that
// can create a delivery file with no name (Linux O_TMPFILE) and link it into
// each recipient's new/ once it is complete. The default FS implements it
// on Linux; Open checks that it works under the root and otherwise (or for
// an FS without it) deliveries use named temp files and Linker.
type UnnamedFS interface {
	// CreateUnnamed creates a file with no name on dir's file system,
	// open for writing.
	CreateUnnamed(dir string) (File, error)
	// LinkUnnamed gives f, a file from CreateUnnamed, the name newname
	// (one more hard link when it has a name already).
	LinkUnnamed(f File, newname string) error
}

// link hard-links src to dst through Options.FS if it is a Linker.
func (s *Store) link(src, dst string) error {
	if l, ok := s.fs.(Linker); ok {
		return l.Link(src, dst)
	}
	return os.Link(src, dst)
}

// linkNew makes dst, a name in a recipient's new/, with linkf.
func (s *Store) linkNew(linkf func(dst string) error, dst string) error {
	err := linkf(dst)
	if errors.Is(err, os.ErrNotExist) {
		// The recipient's new/ vanished (maildir removed by hand): recreate.
		if mkErr := makeMaildir(filepath.Dir(filepath.Dir(dst)), false); mkErr == nil {
			err = linkf(dst)
		}
	}
	return err
}

// Abort discards the delivery. Safe to call after Commit (no-op).
func (d *Delivery) Abort() error {
	if d.done {
		return nil
	}
	d.done = true
	d.tmp.discard()
	return nil
}
