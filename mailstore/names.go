package mailstore

// Folder names: the API uses "/"-separated UTF-8 names; on disk a folder is
// the Maildir++ directory "." + components joined by ".", each component in
// modified UTF-7 (RFC 3501 §5.1.3), as Dovecot stores them. INBOX is the
// user directory itself.
//
// Invariant: every name that reaches the file system went through
// checkFolderName, so a component can never be "", ".", "..", or contain
// "/", ".", NUL or other control characters, and the directory name is at
// most 255 bytes: no folder can resolve outside the user's directory.

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// maxFolderName bounds both the API name and the on-disk directory name
// (NAME_MAX on common file systems).
const maxFolderName = 255

// mutf7 is RFC 3501's modified base64: "," instead of "/", no padding.
var mutf7 = base64.NewEncoding("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,").WithPadding(base64.NoPadding)

// encodeMUTF7 encodes a UTF-8 string in modified UTF-7 (RFC 3501 §5.1.3):
// printable ASCII stands for itself ("&" as "&-"), everything else is
// UTF-16BE in modified base64 between "&" and "-".
func encodeMUTF7(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c <= 0x7e {
			if c == '&' {
				b.WriteString("&-")
			} else {
				b.WriteByte(c)
			}
			i++
			continue
		}
		// A run of non-printable-ASCII characters becomes one base64 run.
		j := i
		var units []uint16
		for j < len(s) && (s[j] < 0x20 || s[j] > 0x7e) {
			r, n := utf8.DecodeRuneInString(s[j:])
			j += n
			r1, r2 := utf16.EncodeRune(r)
			if r1 == utf8.RuneError && r2 == utf8.RuneError {
				units = append(units, uint16(r))
			} else {
				units = append(units, uint16(r1), uint16(r2))
			}
		}
		buf := make([]byte, 0, 2*len(units))
		for _, u := range units {
			buf = append(buf, byte(u>>8), byte(u))
		}
		b.WriteByte('&')
		b.WriteString(mutf7.EncodeToString(buf))
		b.WriteByte('-')
		i = j
	}
	return b.String()
}

var errBadMUTF7 = errors.New("invalid modified UTF-7")

// decodeMUTF7 decodes modified UTF-7, rejecting non-canonical forms
// (RFC 3501 §5.1.3: printable ASCII must not be encoded, no empty or
// adjacent base64 runs) so that decoding and encoding are inverse.
func decodeMUTF7(s string) (string, error) {
	var b strings.Builder
	prevEncoded := false
	for i := 0; i < len(s); {
		c := s[i]
		if c < 0x20 || c > 0x7e {
			return "", errBadMUTF7
		}
		if c != '&' {
			b.WriteByte(c)
			i++
			prevEncoded = false
			continue
		}
		end := strings.IndexByte(s[i+1:], '-')
		if end < 0 {
			return "", errBadMUTF7
		}
		run := s[i+1 : i+1+end]
		i += end + 2
		if run == "" {
			b.WriteByte('&')
			prevEncoded = false
			continue
		}
		if prevEncoded {
			return "", errBadMUTF7 // two adjacent runs must have been one
		}
		raw, err := mutf7.Strict().DecodeString(run)
		if err != nil || len(raw)%2 != 0 {
			return "", errBadMUTF7
		}
		units := make([]uint16, len(raw)/2)
		for k := range units {
			units[k] = uint16(raw[2*k])<<8 | uint16(raw[2*k+1])
		}
		for k := 0; k < len(units); k++ {
			u := units[k]
			var r rune
			switch {
			case utf16.IsSurrogate(rune(u)):
				if u >= 0xdc00 || k+1 >= len(units) {
					return "", errBadMUTF7
				}
				r = utf16.DecodeRune(rune(u), rune(units[k+1]))
				if r == utf8.RuneError {
					return "", errBadMUTF7
				}
				k++
			default:
				r = rune(u)
			}
			if r >= 0x20 && r <= 0x7e {
				return "", errBadMUTF7 // printable ASCII must be literal
			}
			b.WriteRune(r)
		}
		prevEncoded = true
	}
	return b.String(), nil
}

// checkFolderName validates an API folder name and returns it canonical
// (INBOX upper-cased as first component) with its components.
func checkFolderName(name string) (string, []string, error) {
	bad := func(why string) (string, []string, error) {
		return "", nil, fmt.Errorf("%w: %q: %s", ErrBadFolderName, name, why)
	}
	if name == "" {
		return bad("empty")
	}
	if len(name) > maxFolderName {
		return bad("too long")
	}
	if !utf8.ValidString(name) {
		return bad("not UTF-8")
	}
	parts := strings.Split(name, Separator)
	for _, p := range parts {
		if p == "" {
			return bad("empty component")
		}
		if p == "." || p == ".." {
			return bad("dot component")
		}
		if p[0] == ' ' || p[len(p)-1] == ' ' {
			return bad("leading or trailing space")
		}
		for _, r := range p {
			switch {
			case r < 0x20, r == 0x7f, r >= 0x80 && r < 0xa0:
				return bad("control character")
			case r == '.', r == '/', r == '\\', r == '~':
				return bad(fmt.Sprintf("%q not allowed", r))
			case r == utf8.RuneError:
				return bad("invalid character")
			}
		}
	}
	if strings.EqualFold(parts[0], Inbox) {
		parts[0] = Inbox
	}
	if len(parts) > 1 || parts[0] != Inbox {
		if len(folderDirName(parts)) > maxFolderName {
			return bad("encoded name too long")
		}
	}
	return strings.Join(parts, Separator), parts, nil
}

// folderDirName is the Maildir++ directory name of a non-INBOX folder.
func folderDirName(parts []string) string {
	enc := make([]string, len(parts))
	for i, p := range parts {
		enc[i] = encodeMUTF7(p)
	}
	return "." + strings.Join(enc, ".")
}

// folderNameFromDir maps a Maildir++ directory name back to an API name; ok
// is false for entries that are not (valid) folders.
func folderNameFromDir(dir string) (string, bool) {
	if len(dir) < 2 || dir[0] != '.' || dir == ".." {
		return "", false
	}
	enc := strings.Split(dir[1:], ".")
	parts := make([]string, len(enc))
	for i, e := range enc {
		d, err := decodeMUTF7(e)
		if err != nil {
			return "", false
		}
		parts[i] = d
	}
	name, _, err := checkFolderName(strings.Join(parts, Separator))
	if err != nil {
		return "", false
	}
	return name, true
}
