package imapd

import (
	"encoding/binary"
	"errors"
	"sort"
	"time"

	"github.com/emersion/go-imap/v2"
)

// cacheKey names our entry in the store's per-message cache. The version
// byte inside lets a later format coexist; a mismatch is just a miss.
const (
	cacheKey     = "imapd.v1"
	cacheVersion = 1
)

var errCorruptCache = errors.New("imapd: corrupt cache entry")

// encodeCached serialises an envelope and body structure compactly:
// uvarint-prefixed strings, uvarint counts, zigzag varint date, one tag byte
// per body part. It is what SELECT/FETCH on large folders read instead of
// the message files.
func encodeCached(env *imap.Envelope, bs imap.BodyStructure) []byte {
	e := encoder{b: make([]byte, 0, 256)}
	e.b = append(e.b, cacheVersion)
	e.envelope(env)
	e.body(bs)
	return e.b
}

// decodeCached is encodeCached's inverse; any malformed input (truncated,
// absurd counts, too deep) is an error, never a panic.
func decodeCached(b []byte) (*imap.Envelope, imap.BodyStructure, error) {
	if len(b) == 0 || b[0] != cacheVersion {
		return nil, nil, errCorruptCache
	}
	d := decoder{s: string(b[1:])}
	env := d.envelope()
	bs := d.body(0)
	if d.err != nil {
		return nil, nil, d.err
	}
	if len(d.s) != 0 {
		return nil, nil, errCorruptCache
	}
	return env, bs, nil
}

// decodeCachedEnvelope decodes only the envelope (it comes first), for
// FETCH ENVELOPE and SEARCH on headers, which need no body structure.
func decodeCachedEnvelope(b []byte) (*imap.Envelope, error) {
	if len(b) == 0 || b[0] != cacheVersion {
		return nil, errCorruptCache
	}
	d := decoder{s: string(b[1:])}
	env := d.envelope()
	return env, d.err
}

// decodeCachedSubject returns just the raw subject (the second field), for
// SEARCH SUBJECT without decoding the rest.
func decodeCachedSubject(b []byte) (string, error) {
	if len(b) < 2 || b[0] != cacheVersion {
		return "", errCorruptCache
	}
	b = b[1:]
	skip := func() bool { // one varint
		_, n := binary.Uvarint(b)
		if n <= 0 {
			return false
		}
		b = b[n:]
		return true
	}
	if b[0] == 1 {
		b = b[1:]
		if !skip() || !skip() {
			return "", errCorruptCache
		}
	} else {
		b = b[1:]
	}
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return "", errCorruptCache
	}
	return string(b[k : k+int(n)]), nil
}

type encoder struct{ b []byte }

func (e *encoder) uint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) str(s string)  { e.uint(uint64(len(s))); e.b = append(e.b, s...) }
func (e *encoder) bool(v bool) {
	if v {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
}

func (e *encoder) strs(l []string) {
	e.uint(uint64(len(l)))
	for _, s := range l {
		e.str(s)
	}
}

func (e *encoder) params(m map[string]string) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	e.uint(uint64(len(keys)))
	for _, k := range keys {
		e.str(k)
		e.str(m[k])
	}
}

func (e *encoder) envelope(env *imap.Envelope) {
	e.bool(!env.Date.IsZero())
	if !env.Date.IsZero() {
		_, off := env.Date.Zone()
		e.b = binary.AppendVarint(e.b, env.Date.Unix())
		e.b = binary.AppendVarint(e.b, int64(off))
	}
	e.str(env.Subject)
	for _, l := range [][]imap.Address{env.From, env.Sender, env.ReplyTo, env.To, env.Cc, env.Bcc} {
		e.uint(uint64(len(l)))
		for _, a := range l {
			e.str(a.Name)
			e.str(a.Mailbox)
			e.str(a.Host)
		}
	}
	e.strs(env.InReplyTo)
	e.str(env.MessageID)
}

func (e *encoder) disposition(d *imap.BodyStructureDisposition) {
	e.bool(d != nil)
	if d != nil {
		e.str(d.Value)
		e.params(d.Params)
	}
}

func (e *encoder) body(bs imap.BodyStructure) {
	switch bs := bs.(type) {
	case *imap.BodyStructureMultiPart:
		e.b = append(e.b, 'M')
		e.str(bs.Subtype)
		e.uint(uint64(len(bs.Children)))
		for _, c := range bs.Children {
			e.body(c)
		}
		ext := bs.Extended
		if ext == nil {
			ext = &imap.BodyStructureMultiPartExt{}
		}
		e.params(ext.Params)
		e.disposition(ext.Disposition)
		e.strs(ext.Language)
		e.str(ext.Location)
	case *imap.BodyStructureSinglePart:
		e.b = append(e.b, 'S')
		e.str(bs.Type)
		e.str(bs.Subtype)
		e.params(bs.Params)
		e.str(bs.ID)
		e.str(bs.Description)
		e.str(bs.Encoding)
		e.uint(uint64(bs.Size))
		switch {
		case bs.MessageRFC822 != nil:
			e.b = append(e.b, 2)
			e.envelope(bs.MessageRFC822.Envelope)
			e.body(bs.MessageRFC822.BodyStructure)
			e.uint(uint64(bs.MessageRFC822.NumLines))
		case bs.Text != nil:
			e.b = append(e.b, 1)
			e.uint(uint64(bs.Text.NumLines))
		default:
			e.b = append(e.b, 0)
		}
		ext := bs.Extended
		if ext == nil {
			ext = &imap.BodyStructureSinglePartExt{}
		}
		e.disposition(ext.Disposition)
		e.strs(ext.Language)
		e.str(ext.Location)
	}
}

// decoder reads from one string made of the whole entry, so every string
// field is a substring of it: one allocation per entry instead of one per
// field (FETCH ENVELOPE on 100,000 messages is dominated by allocation).
type decoder struct {
	s   string
	err error
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errCorruptCache
	}
	d.s = ""
}

func (d *decoder) uint() uint64 {
	var v uint64
	for i := 0; i < len(d.s) && i < binary.MaxVarintLen64; i++ {
		c := d.s[i]
		if i == binary.MaxVarintLen64-1 && c > 1 {
			break // overflow
		}
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			d.s = d.s[i+1:]
			return v
		}
	}
	d.fail()
	return 0
}

func (d *decoder) int() int64 {
	u := d.uint()
	v := int64(u >> 1)
	if u&1 != 0 {
		v = ^v
	}
	return v
}

func (d *decoder) byte() byte {
	if len(d.s) == 0 {
		d.fail()
		return 0
	}
	c := d.s[0]
	d.s = d.s[1:]
	return c
}

// count reads a count and checks it against what is left (each item takes
// at least one octet), so a forged count cannot make us allocate much.
func (d *decoder) count() int {
	n := d.uint()
	if n > uint64(len(d.s)) {
		d.fail()
		return 0
	}
	return int(n)
}

func (d *decoder) str() string {
	n := d.count()
	v := d.s[:n]
	d.s = d.s[n:]
	return v
}

func (d *decoder) strs() []string {
	n := d.count()
	if n == 0 {
		return nil
	}
	l := make([]string, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		l = append(l, d.str())
	}
	return l
}

func (d *decoder) params() map[string]string {
	n := d.count()
	if n == 0 {
		return nil
	}
	m := make(map[string]string, n)
	for i := 0; i < n && d.err == nil; i++ {
		k := d.str()
		m[k] = d.str()
	}
	return m
}

func (d *decoder) envelope() *imap.Envelope {
	env := &imap.Envelope{}
	if d.byte() == 1 {
		sec, off := d.int(), d.int()
		if off < -24*3600 || off > 24*3600 {
			d.fail()
			return env
		}
		env.Date = time.Unix(sec, 0).In(time.FixedZone("", int(off)))
	}
	env.Subject = d.str()
	lists := []*[]imap.Address{&env.From, &env.Sender, &env.ReplyTo, &env.To, &env.Cc, &env.Bcc}
	for _, l := range lists {
		n := d.count()
		for i := 0; i < n && d.err == nil; i++ {
			*l = append(*l, imap.Address{Name: d.str(), Mailbox: d.str(), Host: d.str()})
		}
	}
	env.InReplyTo = d.strs()
	env.MessageID = d.str()
	return env
}

func (d *decoder) disposition() *imap.BodyStructureDisposition {
	if d.byte() != 1 {
		return nil
	}
	return &imap.BodyStructureDisposition{Value: d.str(), Params: d.params()}
}

func (d *decoder) body(depth int) imap.BodyStructure {
	if depth > 2*maxMIMEDepth+2 {
		d.fail()
		return nil
	}
	switch d.byte() {
	case 'M':
		mp := &imap.BodyStructureMultiPart{Subtype: d.str()}
		n := d.count()
		for i := 0; i < n && d.err == nil; i++ {
			mp.Children = append(mp.Children, d.body(depth+1))
		}
		if n == 0 {
			d.fail() // go-imap panics on a multipart without parts
		}
		mp.Extended = &imap.BodyStructureMultiPartExt{Params: d.params(), Disposition: d.disposition(), Language: d.strs(), Location: d.str()}
		return mp
	case 'S':
		sp := &imap.BodyStructureSinglePart{
			Type: d.str(), Subtype: d.str(), Params: d.params(),
			ID: d.str(), Description: d.str(), Encoding: d.str(),
		}
		size := d.uint()
		if size > 1<<32-1 {
			d.fail()
		}
		sp.Size = uint32(size)
		switch d.byte() {
		case 0:
		case 1:
			sp.Text = &imap.BodyStructureText{NumLines: int64(d.uint() & (1<<62 - 1))}
		case 2:
			sp.MessageRFC822 = &imap.BodyStructureMessageRFC822{Envelope: d.envelope(), BodyStructure: d.body(depth + 1)}
			sp.MessageRFC822.NumLines = int64(d.uint() & (1<<62 - 1))
		default:
			d.fail()
		}
		sp.Extended = &imap.BodyStructureSinglePartExt{Disposition: d.disposition(), Language: d.strs(), Location: d.str()}
		return sp
	}
	d.fail()
	return nil
}
