package mailstore

// Maildir file names (https://cr.yp.to/proto/maildir.html, Dovecot's
// extensions): "<key>[:2,<info>]" where key is
// "<unix>.M<usec>P<pid>Q<n>.<host>[,S=<size>][,W=<vsize>]" for files we
// write and anything unique for files others write, and info is the sorted
// flag letters: D F P R S T system flags, a..z keywords.

import (
	"cmp"
	"sort"
	"strconv"
	"strings"
)

// splitFileName splits a maildir file name into its key (base name) and
// its flag letters. hasInfo is false when the name has no ":2," part.
func splitFileName(name string) (key, info string, hasInfo bool) {
	i := strings.IndexByte(name, ':')
	if i < 0 {
		return name, "", false
	}
	key = name[:i]
	if strings.HasPrefix(name[i:], ":2,") {
		return key, name[i+3:], true
	}
	return key, "", false
}

// validKey reports whether key can be a maildir base name we will use in a
// path: one path component, not hidden, no NUL or separator characters.
func validKey(key string) bool {
	if key == "" || key[0] == '.' || len(key) > 255 {
		return false
	}
	for i := 0; i < len(key); i++ {
		switch c := key[i]; c {
		case '/', 0, ':', '\n', '\r':
			return false
		}
	}
	return true
}

// keySizes extracts ",S=" and ",W=" from a base name; -1 when absent.
func keySizes(key string) (size, vsize int64) {
	size, vsize = -1, -1
	i := strings.IndexByte(key, ',')
	if i < 0 {
		return
	}
	for f := range strings.SplitSeq(key[i+1:], ",") {
		if len(f) < 3 || f[1] != '=' {
			continue
		}
		n, err := strconv.ParseInt(f[2:], 10, 64)
		if err != nil || n < 0 {
			continue
		}
		switch f[0] {
		case 'S':
			size = n
		case 'W':
			vsize = n
		}
	}
	return
}

// deliveryOrder is the sort key for giving picked-up files their UIDs in
// delivery order: the time in the name (seconds, then the microseconds of
// an "M<usec>" part, read as a number since writers do not zero-pad them),
// the mtime where the name lacks them, then the "Q<n>" counter and the
// name itself. Name forms (https://cr.yp.to/proto/maildir.html):
// "<sec>.M<usec>P<pid>Q<n>.<host>" (ours, Dovecot's without Q),
// "<sec>.<pid>.<host>" (old), "<sec>.R<hex>.<host>", or anything else.
type deliveryOrder struct {
	sec, nsec int64 // from the name, else from mtime
	mtime     int64 // unix nanoseconds
	q         uint64
	key       string
}

func orderOf(key string, mtime int64) deliveryOrder {
	o := deliveryOrder{mtime: mtime, key: key}
	sec, n := leadingInt(key, 18)
	rest, dot := strings.CutPrefix(key[n:], ".")
	if n == 0 || !dot {
		o.sec, o.nsec = mtime/1e9, mtime%1e9
		return o
	}
	o.sec = sec
	id, _, _ := strings.Cut(rest, ".")
	usec := int64(-1)
	// The modern identifier: markers (# X R I V M P Q) each followed by a
	// value (decimal, or hex for R, I, V).
	for i := 0; i < len(id); {
		c := id[i]
		j := i + 1
		for j < len(id) && !isMarker(id[j]) {
			j++
		}
		v := id[i+1 : j]
		switch c {
		case 'M':
			if n, digits := leadingInt(v, 6); digits > 0 && digits == len(v) {
				usec = n
			}
		case 'Q':
			if n, err := strconv.ParseUint(v, 10, 64); err == nil {
				o.q = n
			}
		}
		i = j
	}
	switch {
	case usec >= 0:
		o.nsec = usec * 1000
	case mtime/1e9 == sec:
		// No microseconds in the name (old form): the mtime places it
		// within its second.
		o.nsec = mtime % 1e9
	}
	return o
}

func isMarker(c byte) bool { return c == '#' || (c >= 'A' && c <= 'Z') }

// leadingInt parses the decimal digits at the start of s and says how many
// there were; none (0) if there are more than max.
func leadingInt(s string, max int) (v int64, digits int) {
	for digits < len(s) && s[digits] >= '0' && s[digits] <= '9' {
		if digits == max {
			return 0, 0
		}
		v = v*10 + int64(s[digits]-'0')
		digits++
	}
	return v, digits
}

func (a deliveryOrder) compare(b deliveryOrder) int {
	return cmp.Or(cmp.Compare(a.sec, b.sec), cmp.Compare(a.nsec, b.nsec),
		cmp.Compare(a.mtime, b.mtime), cmp.Compare(a.q, b.q), strings.Compare(a.key, b.key))
}

// systemLetters maps maildir info letters to system flags.
var systemLetters = map[byte]Flag{
	'D': FlagDraft, 'F': FlagFlagged, 'R': FlagAnswered, 'S': FlagSeen, 'T': FlagDeleted,
}

var systemFlagLetter = map[Flag]byte{
	FlagDraft: 'D', FlagFlagged: 'F', FlagAnswered: 'R', FlagSeen: 'S', FlagDeleted: 'T',
}

// isSystemFlag reports whether f is one of the system flags (case-insensitive
// as IMAP flags are).
func canonicalFlag(f Flag) Flag {
	if len(f) > 0 && f[0] == '\\' {
		for sf := range systemFlagLetter {
			if strings.EqualFold(string(sf), string(f)) {
				return sf
			}
		}
	}
	return f
}

// sortInfo returns info letters sorted and de-duplicated, as the maildir
// spec requires ("in ASCII order").
func sortInfo(letters []byte) string {
	sort.Slice(letters, func(i, j int) bool { return letters[i] < letters[j] })
	out := letters[:0]
	for i, c := range letters {
		if i > 0 && c == letters[i-1] {
			continue
		}
		out = append(out, c)
	}
	return string(out)
}

// hasLetter reports whether info contains c.
func hasLetter(info string, c byte) bool { return strings.IndexByte(info, c) >= 0 }

// fileName joins key and info into a cur/ file name.
func fileName(key, info string) string { return key + ":2," + info }
