package imapd

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/mailsuite/mailsuite/mailstore"
)

// Fetch implements FETCH and UID FETCH (RFC 3501 §6.4.5, BINARY RFC 3516).
// ENVELOPE and BODYSTRUCTURE come from the store's cache; message files are
// opened only for body sections or to fill the cache the first time.
func (sess *session) Fetch(w *imapserver.FetchWriter, numSet imap.NumSet, options *imap.FetchOptions) error {
	return sess.do("fetch", fetchLine(numSet, options), func() error {
		v := sess.sel
		if v == nil {
			return errNoSelect
		}
		idx := v.resolve(numSet, sess.searchRes)
		if metaOnly(options) && !sess.srv.goimapFetch.Load() {
			return sess.metaFetch(v, idx, options)
		}
		gone := 0
		for _, i := range idx {
			err := sess.fetchOne(w, v, i, options)
			if errors.Is(err, mailstore.ErrNoSuchMessage) || errors.Is(err, fs.ErrNotExist) {
				gone++ // expunged by someone else, not yet announced
				continue
			}
			if err != nil {
				return err
			}
		}
		if gone > 0 {
			return errExpungeIssued
		}
		return nil
	})
}

func (sess *session) fetchOne(w *imapserver.FetchWriter, v *view, i int, options *imap.FetchOptions) error {
	m := &v.msgs[i]
	needFile := len(options.BodySection) > 0 || len(options.BinarySection) > 0 || len(options.BinarySectionSize) > 0
	var f *os.File
	if needFile {
		var err error
		if f, err = v.folder.Open(m.UID); err != nil {
			return fmt.Errorf("opening message %d: %w", m.UID, err)
		}
		defer f.Close()
	}
	var env *imap.Envelope
	var bs imap.BodyStructure
	if options.Envelope || options.BodyStructure != nil {
		var err error
		if env, bs, err = sess.parsed(v.folder, m.UID, f, options.BodyStructure != nil); err != nil {
			return err
		}
	}
	// A body section without PEEK sets \Seen (RFC 3501 §6.4.5); the new
	// flags go out in the same FETCH response. Store first, then write.
	sendFlags := options.Flags
	if !v.readOnly && wantsSeen(options) && !hasFlag(m.Flags, mailstore.FlagSeen) {
		infos, err := v.folder.SetFlags([]mailstore.UID{m.UID}, mailstore.FlagsAdd, []mailstore.Flag{mailstore.FlagSeen})
		if err != nil {
			return fmt.Errorf("setting \\Seen on %d: %w", m.UID, err)
		}
		if len(infos) == 1 {
			m.Flags = infos[0].Flags
		}
		sendFlags = true
	}

	rw := w.CreateMessage(uint32(i + 1))
	if options.UID {
		rw.WriteUID(imap.UID(m.UID))
	}
	if sendFlags {
		sess.flagBuf = appendIMAPFlags(sess.flagBuf[:0], m)
		rw.WriteFlags(sess.flagBuf) // written at once: the buffer can be reused
	}
	if options.InternalDate {
		rw.WriteInternalDate(m.InternalDate)
	}
	if options.RFC822Size {
		rw.WriteRFC822Size(m.VSize)
	}
	if options.Envelope {
		rw.WriteEnvelope(env)
	}
	if options.BodyStructure != nil {
		rw.WriteBodyStructure(bs)
	}
	var werr error
	for _, sec := range options.BodySection {
		if werr = sess.writeBodySection(rw, f, m, sec); werr != nil {
			break
		}
	}
	for _, sec := range options.BinarySection {
		if werr != nil {
			break
		}
		data := imapserver.ExtractBinarySection(rewind(f), sec)
		werr = writeLiteral(rw.WriteBinarySection(sec, int64(len(data))), bytes.NewReader(data), int64(len(data)))
	}
	for _, sec := range options.BinarySectionSize {
		if werr != nil {
			break
		}
		rw.WriteBinarySectionSize(sec, imapserver.ExtractBinarySectionSize(rewind(f), sec))
	}
	if err := rw.Close(); err != nil {
		return err
	}
	return werr
}

func wantsSeen(options *imap.FetchOptions) bool {
	for _, s := range options.BodySection {
		if !s.Peek {
			return true
		}
	}
	for _, s := range options.BinarySection {
		if !s.Peek {
			return true
		}
	}
	return false
}

// writeBodySection streams BODY[] straight from the file (CRLF-normalised,
// size VSize); other sections go through go-imap's extractor.
func (sess *session) writeBodySection(rw *imapserver.FetchResponseWriter, f *os.File, m *mailstore.MessageInfo, sec *imap.FetchItemBodySection) error {
	whole := len(sec.Part) == 0 && sec.Specifier == imap.PartSpecifierNone
	if !whole {
		data := imapserver.ExtractBodySection(rewind(f), sec)
		return writeLiteral(rw.WriteBodySection(sec, int64(len(data))), bytes.NewReader(data), int64(len(data)))
	}
	off, n := int64(0), m.VSize
	if p := sec.Partial; p != nil {
		off = min(p.Offset, m.VSize)
		n = min(p.Size, m.VSize-off)
	}
	r := rewind(f)
	if off > 0 {
		if _, err := io.CopyN(io.Discard, r, off); err != nil {
			n = 0
		}
	}
	err := writeLiteral(rw.WriteBodySection(sec, n), r, n)
	if errors.Is(err, errShortLiteral) {
		sess.srv.log.Error("message shorter than its index size", "session", sess.id, "uid", m.UID, "vsize", m.VSize)
		return nil
	}
	return err
}

var errShortLiteral = errors.New("imapd: literal source shorter than announced")

// writeLiteral copies exactly n octets; if the source is short it pads with
// spaces so the protocol stream stays in step, and reports it.
func writeLiteral(wc io.WriteCloser, r io.Reader, n int64) error {
	copied, cerr := io.CopyN(wc, r, n)
	if copied < n {
		if _, err := io.Copy(wc, io.LimitReader(spaces{}, n-copied)); err != nil {
			return err // the client is gone
		}
	}
	if err := wc.Close(); err != nil {
		return err
	}
	if copied < n {
		return fmt.Errorf("%w: %v", errShortLiteral, cerr)
	}
	return nil
}

type spaces struct{}

func (spaces) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	return len(p), nil
}

// rewind seeks f to its start and returns a CRLF-normalising reader on it.
func rewind(f *os.File) io.Reader {
	f.Seek(0, io.SeekStart)
	return newCRLFReader(f)
}

// parsed returns a message's envelope and (if withBody) body structure
// from the cache, parsing the file (f if open) and filling the cache on a
// miss.
func (sess *session) parsed(folder *mailstore.Folder, uid mailstore.UID, f *os.File, withBody bool) (*imap.Envelope, imap.BodyStructure, error) {
	if b, ok := folder.Cached(uid, cacheKey); ok {
		if !withBody {
			if env, err := decodeCachedEnvelope(b); err == nil {
				return env, nil, nil
			}
		} else if env, bs, err := decodeCached(b); err == nil {
			return env, bs, nil
		}
	}
	if f == nil {
		var err error
		if f, err = folder.Open(uid); err != nil {
			return nil, nil, fmt.Errorf("opening message %d: %w", uid, err)
		}
		defer f.Close()
	}
	env, bs := parseMessage(rewind(f))
	folder.SetCached(uid, cacheKey, encodeCached(env, bs))
	return env, bs, nil
}

// fetchLine renders a FETCH for the command hook.
func fetchLine(numSet imap.NumSet, o *imap.FetchOptions) string {
	var items []string
	add := func(on bool, s string) {
		if on {
			items = append(items, s)
		}
	}
	add(o.UID, "UID")
	add(o.Flags, "FLAGS")
	add(o.InternalDate, "INTERNALDATE")
	add(o.RFC822Size, "RFC822.SIZE")
	add(o.Envelope, "ENVELOPE")
	add(o.BodyStructure != nil, "BODYSTRUCTURE")
	for _, s := range o.BodySection {
		items = append(items, sectionName(s))
	}
	for _, s := range o.BinarySection {
		items = append(items, fmt.Sprintf("BINARY%v", s.Part))
	}
	prefix := "FETCH "
	if _, ok := numSet.(imap.UIDSet); ok {
		prefix = "UID FETCH "
	}
	return prefix + numSet.String() + " (" + strings.Join(items, " ") + ")"
}

func sectionName(s *imap.FetchItemBodySection) string {
	name := "BODY["
	if s.Peek {
		name = "BODY.PEEK["
	}
	var parts []string
	for _, p := range s.Part {
		parts = append(parts, fmt.Sprint(p))
	}
	spec := strings.Join(parts, ".")
	if s.Specifier != imap.PartSpecifierNone {
		if spec != "" {
			spec += "."
		}
		spec += string(s.Specifier)
		if len(s.HeaderFields) > 0 {
			spec += ".FIELDS (" + strings.Join(s.HeaderFields, " ") + ")"
		} else if len(s.HeaderFieldsNot) > 0 {
			spec += ".FIELDS.NOT (" + strings.Join(s.HeaderFieldsNot, " ") + ")"
		}
	}
	return name + spec + "]"
}
