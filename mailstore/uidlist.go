package mailstore

// dovecot-uidlist, version 3, as Dovecot 2.x writes it:
//
//	3 V<uidvalidity> N<nextuid> G<guid, 32 hex>
//	<uid> [<ext field>...] :<file base name>
//
// Ext fields are a letter and a value (W<vsize>, S<size>, G<guid>, ...);
// unknown ones are kept as they are. Version 1 ("1 <uidvalidity>
// <nextuid>" and "<uid> <file name>") is read for old trees and rewritten
// as version 3.

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

type uidRec struct {
	uid UID
	key string // base name, without ":2,..."
	ext string // ext fields as they were, space separated ("" if none)
}

type uidList struct {
	uidValidity uint32
	nextUID     UID
	guid        string
	hdrExtra    string // header fields we do not interpret, kept verbatim
	recs        []uidRec
	torn        bool // the file ends in a partial line: do not append to it
	// legacy: the file is version 1, whose line syntax differs; appending
	// version-3 lines to it would make the next reader misparse them, so
	// the first change rewrites it whole as version 3.
	legacy bool
}

var errBadUIDList = errors.New("malformed dovecot-uidlist")

func parseUIDList(data []byte) (*uidList, error) {
	nl := bytes.IndexByte(data, '\n')
	if nl < 0 {
		return nil, fmt.Errorf("%w: no header line", errBadUIDList)
	}
	l := &uidList{}
	hdr := strings.Fields(string(data[:nl]))
	if len(hdr) == 0 {
		return nil, fmt.Errorf("%w: empty header", errBadUIDList)
	}
	version := hdr[0]
	switch version {
	case "1":
		if len(hdr) != 3 {
			return nil, fmt.Errorf("%w: bad v1 header", errBadUIDList)
		}
		v, err1 := strconv.ParseUint(hdr[1], 10, 32)
		n, err2 := strconv.ParseUint(hdr[2], 10, 32)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("%w: bad v1 header", errBadUIDList)
		}
		l.uidValidity, l.nextUID = uint32(v), UID(n)
		l.legacy = true
	case "3":
		var extra []string
		for _, f := range hdr[1:] {
			if len(f) < 2 {
				return nil, fmt.Errorf("%w: bad header field %q", errBadUIDList, f)
			}
			switch f[0] {
			case 'V':
				v, err := strconv.ParseUint(f[1:], 10, 32)
				if err != nil {
					return nil, fmt.Errorf("%w: bad UIDVALIDITY", errBadUIDList)
				}
				l.uidValidity = uint32(v)
			case 'N':
				n, err := strconv.ParseUint(f[1:], 10, 32)
				if err != nil {
					return nil, fmt.Errorf("%w: bad next UID", errBadUIDList)
				}
				l.nextUID = UID(n)
			case 'G':
				l.guid = f[1:]
			default:
				extra = append(extra, f)
			}
		}
		l.hdrExtra = strings.Join(extra, " ")
	default:
		return nil, fmt.Errorf("%w: unsupported version %q", errBadUIDList, version)
	}
	if l.uidValidity == 0 {
		return nil, fmt.Errorf("%w: no UIDVALIDITY", errBadUIDList)
	}
	rest := data[nl+1:]
	var last UID
	for len(rest) > 0 {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			// A line without its newline is a torn append: ignore it.
			l.torn = true
			break
		}
		if len(line) == 0 {
			continue
		}
		rec, err := parseUIDRec(line, version == "1")
		if err != nil {
			return nil, err
		}
		if rec.uid <= last {
			return nil, fmt.Errorf("%w: UID %d not ascending", errBadUIDList, rec.uid)
		}
		last = rec.uid
		l.recs = append(l.recs, rec)
	}
	// Records appended after the header was written may run past N.
	if l.nextUID <= last {
		l.nextUID = last + 1
	}
	return l, nil
}

func parseUIDRec(line []byte, v1 bool) (uidRec, error) {
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 {
		return uidRec{}, fmt.Errorf("%w: bad record", errBadUIDList)
	}
	u, err := strconv.ParseUint(string(line[:sp]), 10, 32)
	if err != nil || u == 0 {
		return uidRec{}, fmt.Errorf("%w: bad UID in record", errBadUIDList)
	}
	rec := uidRec{uid: UID(u)}
	rest := line[sp+1:]
	var name []byte
	if v1 {
		name = rest
	} else {
		// The file name follows the first " :" (or a leading ":").
		i := bytes.IndexByte(rest, ':')
		if i < 0 || (i > 0 && rest[i-1] != ' ') {
			return uidRec{}, fmt.Errorf("%w: record without file name", errBadUIDList)
		}
		rec.ext = strings.TrimSpace(string(rest[:i]))
		name = rest[i+1:]
	}
	key, _, _ := splitFileName(string(name))
	if !validKey(key) {
		return uidRec{}, fmt.Errorf("%w: bad file name in record", errBadUIDList)
	}
	rec.key = key
	return rec, nil
}

// dateExt is our record ext field: the message's date (file mtime when
// first seen, the APPEND date) in Unix nanoseconds, so a first sync need not
// stat every file. Dovecot keeps ext fields it does not know.
const dateExt = 'X'

// extInt returns the value of numeric ext field c, or -1.
func extInt(ext string, c byte) (int64, bool) {
	for f := range strings.FieldsSeq(ext) {
		if f[0] == c {
			n, err := strconv.ParseInt(f[1:], 10, 64)
			if err != nil || n < 0 {
				return -1, false
			}
			return n, true
		}
	}
	return -1, false
}

// setExt sets numeric ext field c, replacing an old value.
func setExt(ext string, c byte, v int64) string {
	var out []string
	for f := range strings.FieldsSeq(ext) {
		if f[0] != c {
			out = append(out, f)
		}
	}
	return strings.Join(append(out, string(c)+strconv.FormatInt(v, 10)), " ")
}

func (l *uidList) marshal() []byte {
	var b bytes.Buffer
	b.Grow(64 + len(l.recs)*64)
	fmt.Fprintf(&b, "3 V%d N%d", l.uidValidity, l.nextUID)
	if l.guid != "" {
		b.WriteString(" G" + l.guid)
	}
	if l.hdrExtra != "" {
		b.WriteByte(' ')
		b.WriteString(l.hdrExtra)
	}
	b.WriteByte('\n')
	for _, r := range l.recs {
		appendUIDRec(&b, r)
	}
	return b.Bytes()
}

func appendUIDRec(b *bytes.Buffer, r uidRec) {
	b.WriteString(strconv.FormatUint(uint64(r.uid), 10))
	b.WriteByte(' ')
	if r.ext != "" {
		b.WriteString(r.ext)
		b.WriteByte(' ')
	}
	b.WriteByte(':')
	b.WriteString(r.key)
	b.WriteByte('\n')
}
