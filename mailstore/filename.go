package mailstore

// Maildir file names (https://cr.yp.to/proto/maildir.html, Dovecot's
// extensions): "<key>[:2,<info>]" where key is
// "<unix>.M<usec>P<pid>Q<n>.<host>[,S=<size>][,W=<vsize>]" for files we
// write and anything unique for files others write, and info is the sorted
// flag letters: D F P R S T system flags, a..z keywords.

import (
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

// keyTime is the delivery time in a base name's leading "<unix>." (0 if
// none); UIDs of picked-up files are assigned in this order.
func keyTime(key string) int64 {
	n := 0
	for n < len(key) && key[n] >= '0' && key[n] <= '9' {
		n++
	}
	if n == 0 || n > 18 {
		return 0
	}
	t, _ := strconv.ParseInt(key[:n], 10, 64)
	return t
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
