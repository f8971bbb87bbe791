package mailstore

import (
	"context"
	"errors"
	"io"
	"os"
	"time"
)

var errUnimplemented = errors.New("mailstore: unimplemented")

// FS is the file-system seam for failure injection in tests.
type FS interface {
	// CreateTemp creates a new file for writing (like os.OpenFile with
	// O_CREATE|O_EXCL|O_WRONLY).
	Create(path string) (File, error)
}

// File is the part of *os.File the store writes through.
type File interface {
	io.Writer
	Sync() error
	Close() error
}

// Store is the whole tree. Safe for concurrent use by many sessions; safe
// beside other processes (Dovecot, a delivery agent) using the same maildirs.
type Store struct{}

// Open opens (creating if needed) the tree at opts.Root.
func Open(opts Options) (*Store, error) { return nil, errUnimplemented }

// Close stops background work; open handles become unusable (ErrClosed).
func (s *Store) Close() error { return errUnimplemented }

// ---- Delivery: begin, write, commit or abort ----

// Delivery is one message being delivered to one or more users. It is
// written once (to a temp file, fsynced) and hard-linked into each
// recipient's INBOX/new on Commit.
type Delivery struct{}

// BeginDelivery starts a delivery.
func (s *Store) BeginDelivery() (*Delivery, error) { return nil, errUnimplemented }

// Write appends message bytes (headers and body, as they will be stored).
func (d *Delivery) Write(p []byte) (int, error) { return 0, errUnimplemented }

// Commit makes the message durable in every user's INBOX (fsync the file,
// link into each new/, fsync each directory) and only then returns nil. It is
// all or nothing: on error every link already made is removed and nothing is
// visible. Watchers are notified after success. Commit checks quotas: a user
// already over quota (before this message, allowing QuotaGrace) fails the
// whole commit with an error wrapping ErrQuota; callers should have checked
// CheckQuota at RCPT time.
func (d *Delivery) Commit(ctx context.Context, users []string) error { return errUnimplemented }

// Abort discards the delivery. Safe to call after Commit (no-op).
func (d *Delivery) Abort() error { return nil }

// CheckQuota returns an error wrapping ErrQuota if user is already at or over
// quota, or would be with size more octets (size may be 0 if unknown).
func (s *Store) CheckQuota(user string, size int64) error { return errUnimplemented }

// ---- Users and folders ----

// User returns the handle of user's maildir (canonical address), creating the
// maildir and the default folders on first use.
func (s *Store) User(user string) (*User, error) { return nil, errUnimplemented }

// User is one user's maildir.
type User struct{}

// Name returns the user's canonical address.
func (u *User) Name() string { return "" }

// Folders lists all folders, INBOX first.
func (u *User) Folders() ([]FolderInfo, error) { return nil, errUnimplemented }

// CreateFolder creates name (and missing parents). use may be UseNone.
func (u *User) CreateFolder(name string, use SpecialUse) error { return errUnimplemented }

// DeleteFolder deletes name and its messages. INBOX: ErrNotPermitted.
// A folder with children is deleted but its children stay (RFC 3501 §6.3.4
// allows either; we keep \Noselect-free behaviour by refusing: ErrNotPermitted).
func (u *User) DeleteFolder(name string) error { return errUnimplemented }

// RenameFolder renames a folder and its children. Renaming INBOX moves its
// messages into a new folder and leaves INBOX empty (RFC 3501 §6.3.5).
func (u *User) RenameFolder(oldName, newName string) error { return errUnimplemented }

// SetSubscribed subscribes or unsubscribes name (kept in Dovecot's
// "subscriptions" file). Unknown names may be subscribed (RFC 3501 §6.3.6).
func (u *User) SetSubscribed(name string, on bool) error { return errUnimplemented }

// Subscriptions lists subscribed names.
func (u *User) Subscriptions() ([]string, error) { return nil, errUnimplemented }

// Folder opens a folder handle. Name is case-insensitive only for INBOX.
func (u *User) Folder(name string) (*Folder, error) { return nil, errUnimplemented }

// Usage returns bytes and messages stored across all folders (quota).
func (u *User) Usage() (bytes int64, messages int64, err error) { return 0, 0, errUnimplemented }

// LockMaildrop takes the exclusive POP3 maildrop lock on INBOX (RFC 1939 §8),
// or returns ErrInUse. It holds across processes (lock file) and within one.
func (u *User) LockMaildrop() (release func(), err error) { return nil, errUnimplemented }

// Watch subscribes to events for all of the user's folders. Events are
// coalesced, never block the store, and stop when cancel is called.
func (u *User) Watch() (events <-chan Event, cancel func()) { return nil, func() {} }

// ---- Folders ----

// Folder is a handle to one folder. Handles are cheap; many sessions may hold
// handles to the same folder and share its in-memory index.
type Folder struct{}

// Name returns the folder's name.
func (f *Folder) Name() string { return "" }

// UIDValidity returns the folder's UIDVALIDITY.
func (f *Folder) UIDValidity() uint32 { return 0 }

// Sync brings the folder's index up to date with the disk (picking up files
// other programs dropped into new/ or cur/, assigning them UIDs) and returns
// all messages in UID order. It reads only directory listings and the index
// files, never message files it has seen before.
func (f *Folder) Sync() ([]MessageInfo, error) { return nil, errUnimplemented }

// Status returns counters without building a full list for the caller.
func (f *Folder) Status() (Status, error) { return Status{}, errUnimplemented }

// Open returns the message's content as stored (line endings as delivered).
func (f *Folder) Open(uid UID) (*os.File, error) { return nil, errUnimplemented }

// Append stores a message with flags and internal date, durably, and returns
// its UID (ErrQuota if over quota).
func (f *Folder) Append(r io.Reader, flags []Flag, date time.Time) (UID, error) {
	return 0, errUnimplemented
}

// FlagOp says how SetFlags combines flags.
type FlagOp int

const (
	FlagsAdd FlagOp = iota
	FlagsRemove
	FlagsReplace
)

// SetFlags changes flags of uids (renaming their files) and returns their
// new info. Missing UIDs are skipped.
func (f *Folder) SetFlags(uids []UID, op FlagOp, flags []Flag) ([]MessageInfo, error) {
	return nil, errUnimplemented
}

// Expunge removes uids durably (unlink, fsync dir, update index) before
// returning. Missing UIDs are skipped. It returns the UIDs removed.
func (f *Folder) Expunge(uids []UID) ([]UID, error) { return nil, errUnimplemented }

// CopyTo copies uids (with flags and dates) to dest, durably, returning the
// source and new destination UIDs pairwise (for COPYUID).
func (f *Folder) CopyTo(uids []UID, dest *Folder) (src, dst []UID, err error) {
	return nil, nil, errUnimplemented
}

// MoveTo moves uids to dest (copy then expunge, durable), for MOVE.
func (f *Folder) MoveTo(uids []UID, dest *Folder) (src, dst []UID, err error) {
	return nil, nil, errUnimplemented
}

// Keywords returns the keywords defined for this folder (dovecot-keywords).
func (f *Folder) Keywords() []Flag { return nil }

// Cached returns data a protocol stored for a message under key (e.g. a
// serialised IMAP envelope), if present.
func (f *Folder) Cached(uid UID, key string) ([]byte, bool) { return nil, false }

// SetCached stores data for a message under key. The cache is persistent
// (a per-folder file) but advisory: it may be dropped and rebuilt any time.
func (f *Folder) SetCached(uid UID, key string, value []byte) {}
