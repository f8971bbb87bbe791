package pop3d

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"

	gosasl "github.com/emersion/go-sasl"
	"github.com/mailsuite/mailsuite/accounts"
	"github.com/mailsuite/mailsuite/internal/sasl"
	"github.com/mailsuite/mailsuite/mailstore"
)

// maildrop is the mailstore-backed Session: the maildrop is the user's
// INBOX as it was at login (RFC 1939 §8 snapshot), locked against other
// POP3 sessions with User.LockMaildrop.
type maildrop struct {
	accounts *accounts.Directory
	store    *mailstore.Store
	hostname string
	markSeen bool
	logger   *slog.Logger

	folder  *mailstore.Folder
	release func()
	uidv    uint32
	msgs    []mailstore.MessageInfo
	sizes   []int64 // RETR octets per message (popSize)
	deleted []bool
	nDel    int
	delSize int64
	size    int64
	// retrieved holds UIDs RETR sent in full that are not \Seen yet; they
	// are flagged in one SetFlags call per batch rather than one per RETR.
	retrieved []mailstore.UID
	updated   bool
}

// seenBatch is how many retrieved messages are flagged \Seen at once.
const seenBatch = 256

func newMaildropSession(o Options, info ConnInfo) *maildrop {
	return &maildrop{
		accounts: o.Accounts,
		store:    o.Store,
		hostname: o.Hostname,
		markSeen: *o.MarkSeenOnRetr,
		logger:   o.Logger.With("session", info.ID),
	}
}

func (m *maildrop) Login(ctx context.Context, username, password string) (string, error) {
	return m.accounts.Authenticate(ctx, username, password)
}

func (m *maildrop) AuthenticateMechanisms() []string {
	return []string{sasl.Plain, sasl.Login, sasl.CRAMMD5}
}

func (m *maildrop) Authenticate(ctx context.Context, mech string, done func(string)) (gosasl.Server, error) {
	return sasl.NewServer(ctx, mech, m.accounts, m.hostname, done)
}

func (m *maildrop) Open(ctx context.Context, user string) error {
	u, err := m.store.User(user)
	if err != nil {
		return fmt.Errorf("pop3d: open maildrop of %s: %w", user, err)
	}
	release, err := u.LockMaildrop()
	if err != nil {
		return fmt.Errorf("pop3d: lock maildrop of %s: %w", user, err)
	}
	f, err := u.Folder(mailstore.Inbox)
	if err == nil {
		m.msgs, err = f.Sync()
	}
	if err != nil {
		release()
		return fmt.Errorf("pop3d: snapshot maildrop of %s: %w", user, err)
	}
	m.folder, m.release, m.uidv = f, release, f.UIDValidity()
	m.deleted = make([]bool, len(m.msgs))
	m.sizes = make([]int64, len(m.msgs))
	for i, mi := range m.msgs {
		m.sizes[i] = m.popSize(mi)
		m.size += m.sizes[i]
	}
	return nil
}

// cacheKeyNoEOL caches whether a message's last line lacks a newline.
const cacheKeyNoEOL = "pop3.noeol"

// popSize is the exact RETR size (RFC 1939 §11 LIST): the CRLF size the
// store keeps (VSize), plus the CRLF that RETR adds after a last line
// without one, so that the terminating "." stands on its own line. Whether
// that is needed is learned once per message (one byte read) and cached.
func (m *maildrop) popSize(mi mailstore.MessageInfo) int64 {
	if mi.Size == 0 {
		return 0
	}
	if v, ok := m.folder.Cached(mi.UID, cacheKeyNoEOL); ok && len(v) == 1 {
		if v[0] == '1' {
			return mi.VSize + 2
		}
		return mi.VSize
	}
	noEOL, err := m.lacksFinalNewline(mi.UID)
	if err != nil {
		// RETR will report the error; the size here only has to be sane.
		return mi.VSize
	}
	v := []byte{'0'}
	if noEOL {
		v[0] = '1'
	}
	m.folder.SetCached(mi.UID, cacheKeyNoEOL, v)
	if noEOL {
		return mi.VSize + 2
	}
	return mi.VSize
}

func (m *maildrop) lacksFinalNewline(uid mailstore.UID) (bool, error) {
	f, err := m.folder.Open(uid)
	if err != nil {
		return false, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.Size() == 0 {
		return false, err
	}
	var b [1]byte
	if _, err := f.ReadAt(b[:], st.Size()-1); err != nil {
		return false, err
	}
	return b[0] != '\n', nil
}

func (m *maildrop) Stat() (int, int64, error) {
	return len(m.msgs) - m.nDel, m.size - m.delSize, nil
}

func (m *maildrop) info(n int) (mailstore.MessageInfo, error) {
	if n < 1 || n > len(m.msgs) || m.deleted[n-1] {
		return mailstore.MessageInfo{}, ErrNoSuchMessage
	}
	return m.msgs[n-1], nil
}

// uidl is Dovecot's default pop3_uidl_format "%08Xu%08Xv": the IMAP UID and
// the folder's UIDVALIDITY as 8 lower-case hex digits each (Dovecot's %X
// modifier prints lower case), so clients moving between Dovecot and
// mailsuite keep their state. Flag changes rename maildir files but keep
// the UID, so the UIDL is stable.
func (m *maildrop) uidl(uid mailstore.UID) string {
	var b [16]byte
	hex8(b[:8], uint32(uid))
	hex8(b[8:], m.uidv)
	return string(b[:])
}

func hex8(b []byte, v uint32) {
	const digits = "0123456789abcdef"
	for i := 7; i >= 0; i-- {
		b[i] = digits[v&0xf]
		v >>= 4
	}
}

func (m *maildrop) message(n int, mi mailstore.MessageInfo) Message {
	return Message{Number: n, Size: m.sizes[n-1], UID: m.uidl(mi.UID)}
}

func (m *maildrop) List() ([]Message, error) {
	out := make([]Message, 0, len(m.msgs)-m.nDel)
	for i, mi := range m.msgs {
		if !m.deleted[i] {
			out = append(out, m.message(i+1, mi))
		}
	}
	return out, nil
}

func (m *maildrop) Message(n int) (Message, error) {
	mi, err := m.info(n)
	if err != nil {
		return Message{}, err
	}
	return m.message(n, mi), nil
}

func (m *maildrop) open(n int) (mailstore.MessageInfo, io.ReadCloser, error) {
	mi, err := m.info(n)
	if err != nil {
		return mi, nil, err
	}
	f, err := m.folder.Open(mi.UID)
	if err != nil {
		return mi, nil, fmt.Errorf("pop3d: open message %d (uid %d): %w", n, mi.UID, err)
	}
	return mi, f, nil
}

func (m *maildrop) Retr(n int) (io.ReadCloser, error) {
	mi, rc, err := m.open(n)
	if err != nil || !m.markSeen || slices.Contains(mi.Flags, mailstore.FlagSeen) {
		return rc, err
	}
	return &seenOnEOF{ReadCloser: rc, onEOF: func() { m.retrievedUID(mi.UID) }}, nil
}

func (m *maildrop) Top(n int) (io.ReadCloser, error) {
	_, rc, err := m.open(n)
	return rc, err
}

// seenOnEOF counts a message as retrieved once it has been read to the end.
type seenOnEOF struct {
	io.ReadCloser
	onEOF func()
}

func (s *seenOnEOF) Read(p []byte) (int, error) {
	n, err := s.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) && s.onEOF != nil {
		s.onEOF()
		s.onEOF = nil
	}
	return n, err
}

func (m *maildrop) retrievedUID(uid mailstore.UID) {
	m.retrieved = append(m.retrieved, uid)
	if len(m.retrieved) >= seenBatch {
		m.flushSeen()
	}
}

// flushSeen sets \Seen on retrieved messages that are not marked deleted.
// A failure is logged, not reported: the message was delivered to the
// client either way.
func (m *maildrop) flushSeen() {
	if len(m.retrieved) == 0 {
		return
	}
	uids := m.retrieved
	m.retrieved = nil
	if _, err := m.folder.SetFlags(uids, mailstore.FlagsAdd, []mailstore.Flag{mailstore.FlagSeen}); err != nil {
		m.logger.Warn("pop3: setting \\Seen after RETR", "err", err)
	}
}

func (m *maildrop) Dele(n int) error {
	if _, err := m.info(n); err != nil {
		return err
	}
	m.deleted[n-1] = true
	m.nDel++
	m.delSize += m.sizes[n-1]
	return nil
}

func (m *maildrop) Rset() error {
	clear(m.deleted)
	m.nDel, m.delSize = 0, 0
	return nil
}

func (m *maildrop) Update(ctx context.Context) (int, error) {
	m.updated = true
	if len(m.retrieved) > 0 {
		kept := m.retrieved[:0]
		for _, uid := range m.retrieved {
			if !m.isDeleted(uid) {
				kept = append(kept, uid)
			}
		}
		m.retrieved = kept
		m.flushSeen()
	}
	if m.nDel == 0 {
		return 0, nil
	}
	uids := make([]mailstore.UID, 0, m.nDel)
	for i, mi := range m.msgs {
		if m.deleted[i] {
			uids = append(uids, mi.UID)
		}
	}
	// Expunge is durable before it returns; UIDs another session already
	// removed are skipped, which is still "deleted" to this client.
	if _, err := m.folder.Expunge(uids); err != nil {
		return 0, fmt.Errorf("pop3d: expunge %d messages: %w", len(uids), err)
	}
	return len(uids), nil
}

func (m *maildrop) isDeleted(uid mailstore.UID) bool {
	i, ok := slices.BinarySearchFunc(m.msgs, uid, func(mi mailstore.MessageInfo, u mailstore.UID) int {
		return int(int64(mi.UID) - int64(u))
	})
	return ok && m.deleted[i]
}

func (m *maildrop) Close() error {
	if m.folder != nil && !m.updated {
		m.flushSeen()
	}
	if m.release != nil {
		m.release()
		m.release = nil
	}
	return nil
}
