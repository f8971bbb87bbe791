// Package mailstore is the suite's one message store: a Maildir++ tree per
// user under <root>/<domain>/<local>/, in Dovecot's on-disk format
// (dovecot-uidlist v3, dovecot-keywords, ",S=" and ",W=" sizes, ":2," flags,
// ".Name" sub-folders with maildirfolder markers and modified UTF-7 names,
// Dovecot's "subscriptions" file), so Dovecot and mailsuite can each open
// the other's tree with the same UIDs, and both can run on it at once.
//
// It owns durable delivery, UIDs and UIDVALIDITY, flags and keywords,
// expunge/copy/move, folder management with names that cannot escape the
// user's directory, quota accounting, change notifications and a cache of
// per-message data. It speaks its own vocabulary (Flag, UID, folder names
// with "/" as the hierarchy separator) and imports no other package of ours
// but internal/atomicfile, and no protocol library. It does not own user
// accounts (callers pass canonical addresses they resolved), message
// parsing (protocols parse and keep results with SetCached) or protocol
// session state beyond \Recent.
//
// Files, one concern each: tree.go (Store), user.go and folders.go (users,
// folder create/list/rename/delete), names.go (folder-name rules and
// modified UTF-7), delivery.go, msgfile.go, tmpfile_linux.go and
// filepool.go (writing messages; unnamed O_TMPFILE files), dirsync.go
// (group commit of directory fsyncs), index.go and sync.go (the shared
// per-folder index and reading directories), uidlistfile.go (reading and
// writing dovecot-uidlist under its lock), uidlist.go, keywords.go,
// filename.go, subscriptions.go and cache.go (file formats), folder.go,
// flags.go, expunge.go and copy.go (folder operations), quota.go, watch.go
// and poll.go (notifications), lock.go and maildrop.go (locks).
//
// Invariants:
//   - A positive return from Commit, Append, CopyTo, MoveTo, SetFlags,
//     Expunge and folder operations means the change is fsynced.
//   - UIDs are assigned only under Dovecot's dovecot-uidlist.lock after
//     re-reading dovecot-uidlist, so no file ever has two UIDs, whichever
//     process (this one, another mailsuite, Dovecot) assigns it.
//   - Every path is built from a validated address and validated folder
//     names; nothing outside <root>/<domain>/<local>/ is ever touched.
//   - Watchers never block the store: events are queued and coalesced.
package mailstore

import (
	"errors"
	"log/slog"
	"time"
)

// Sentinel errors, wrapped with %w.
var (
	ErrNoSuchFolder  = errors.New("mailstore: no such folder")
	ErrFolderExists  = errors.New("mailstore: folder already exists")
	ErrBadFolderName = errors.New("mailstore: invalid folder name")
	ErrNoSuchMessage = errors.New("mailstore: no such message")
	ErrQuota         = errors.New("mailstore: quota exceeded")
	ErrInUse         = errors.New("mailstore: maildrop in use")
	ErrNotPermitted  = errors.New("mailstore: operation not permitted") // e.g. delete INBOX
	ErrClosed        = errors.New("mailstore: store closed")
	ErrBadUser       = errors.New("mailstore: invalid user address")
)

// Inbox is the name of every user's INBOX (case-insensitive on input).
const Inbox = "INBOX"

// Separator is the hierarchy separator of folder names in this package's API.
const Separator = "/"

// UID is an IMAP-style unique identifier within a folder (RFC 3501 §2.3.1.1).
type UID uint32

// Flag is a system flag or a keyword. System flags are the constants below;
// any other value is a keyword (atom, no backslash).
type Flag string

// System flags and the maildir info letters they map to.
const (
	FlagSeen     Flag = `\Seen`     // S
	FlagAnswered Flag = `\Answered` // R
	FlagFlagged  Flag = `\Flagged`  // F
	FlagDeleted  Flag = `\Deleted`  // T
	FlagDraft    Flag = `\Draft`    // D
)

// SpecialUse marks the default folders (RFC 6154).
type SpecialUse string

const (
	UseNone    SpecialUse = ""
	UseSent    SpecialUse = `\Sent`
	UseDrafts  SpecialUse = `\Drafts`
	UseTrash   SpecialUse = `\Trash`
	UseJunk    SpecialUse = `\Junk`
	UseArchive SpecialUse = `\Archive`
)

// DefaultFolders are created on a user's first use, with their special use.
var DefaultFolders = []struct {
	Name string
	Use  SpecialUse
}{
	{"Sent", UseSent}, {"Drafts", UseDrafts}, {"Trash", UseTrash}, {"Junk", UseJunk}, {"Archive", UseArchive},
}

// Options configure a Store. The store copies what it is given.
type Options struct {
	// Root is the directory holding <domain>/<local>/ maildirs.
	Root string
	// Hostname goes into new maildir file names.
	Hostname string
	// Quota returns a user's quota in bytes (0: unlimited). Nil: no quotas.
	Quota func(user string) int64
	// QuotaGrace lets a delivery that starts under quota finish even if it
	// ends over it, as Dovecot's quota_grace does (fraction, default 0.1).
	QuotaGrace float64
	// PollInterval is how often, for users with watchers, INBOX and every
	// folder a session has opened are checked for changes made by other
	// processes (default 1s); what is found is sent to the watchers.
	PollInterval time.Duration
	// Logger for the store's own warnings; default slog.Default().
	Logger *slog.Logger
	// FS lets tests inject failures (disk full, EACCES) into message file
	// writes (deliveries and appends); if it also implements Linker, the
	// delivery hard links of named temp files go through it too, and if it
	// implements UnnamedFS, deliveries use unnamed files made and linked
	// through it. Nil uses the real file system (unnamed O_TMPFILE files
	// on Linux where the root's file system has them).
	FS FS
}

// MessageInfo describes one message as of a Folder.Sync.
type MessageInfo struct {
	UID          UID
	Key          string    // maildir base name (before ":2,"); stable while the message exists
	Size         int64     // octets on disk
	VSize        int64     // octets with every line ending as CRLF (what IMAP and POP3 send)
	InternalDate time.Time // delivery time (file mtime)
	Flags        []Flag    // sorted; system flags first
	Recent       bool      // UID assigned by this process, or found in new/ (RFC 3501 \Recent, approximately)
}

// FolderInfo describes a folder for LIST.
type FolderInfo struct {
	Name        string // e.g. "INBOX", "Archive/2026"
	SpecialUse  SpecialUse
	Subscribed  bool
	HasChildren bool
	// NoSelect marks a hierarchy level that has children but no folder of
	// its own (RFC 3501 §7.2.2 \Noselect), e.g. "A" when only "A/B" exists.
	NoSelect bool
}

// Status is a folder's counters (IMAP STATUS).
type Status struct {
	Messages, Unseen, Recent uint32
	UIDNext                  UID
	UIDValidity              uint32
	Size                     int64 // sum of VSize
}

// EventKind says what changed in a folder.
type EventKind int

const (
	EventAdded   EventKind = iota + 1 // new messages (delivery, append, copy, pick-up)
	EventFlags                        // flags changed
	EventExpunge                      // messages removed
)

// Event is sent to watchers. UIDs may be empty, meaning "something of this
// kind happened: Sync and compare": deliveries carry no UIDs (they get
// them at the next Sync, which then reports EventAdded with the UIDs), and
// queues that overflow collapse to UID-less events. Changes made by other
// processes are found by the poller (for users with watchers) or by any
// Sync, and reported with their UIDs.
type Event struct {
	User   string
	Folder string
	Kind   EventKind
	UIDs   []UID
}
