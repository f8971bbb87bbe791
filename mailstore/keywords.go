package mailstore

// dovecot-keywords maps maildir info letters a..z to keyword names, one
// "<index> <name>" line each, index 0 being 'a'. Dovecot's maildir format
// has room for 26 keywords per folder.

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

const maxKeywords = 26

type keywordTable struct {
	names [maxKeywords]string
}

var errBadKeywords = errors.New("malformed dovecot-keywords")

func parseKeywords(data []byte) (*keywordTable, error) {
	t := &keywordTable{}
	for line := range bytes.SplitSeq(data, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		sp := bytes.IndexByte(line, ' ')
		if sp <= 0 {
			return nil, fmt.Errorf("%w: %q", errBadKeywords, line)
		}
		idx, err := strconv.Atoi(string(line[:sp]))
		if err != nil || idx < 0 || idx >= maxKeywords {
			return nil, fmt.Errorf("%w: bad index in %q", errBadKeywords, line)
		}
		name := string(line[sp+1:])
		if !validKeyword(Flag(name)) {
			return nil, fmt.Errorf("%w: bad keyword %q", errBadKeywords, name)
		}
		t.names[idx] = name
	}
	return t, nil
}

func (t *keywordTable) marshal() []byte {
	var b bytes.Buffer
	for i, n := range t.names {
		if n != "" {
			fmt.Fprintf(&b, "%d %s\n", i, n)
		}
	}
	return b.Bytes()
}

// letter returns the info letter of keyword k (case-insensitive match, as
// IMAP keywords compare), or 0.
func (t *keywordTable) letter(k Flag) byte {
	for i, n := range t.names {
		if n != "" && strings.EqualFold(n, string(k)) {
			return byte('a' + i)
		}
	}
	return 0
}

// add assigns a letter to k, or returns 0 if the table is full.
func (t *keywordTable) add(k Flag) byte {
	if c := t.letter(k); c != 0 {
		return c
	}
	for i, n := range t.names {
		if n == "" {
			t.names[i] = string(k)
			return byte('a' + i)
		}
	}
	return 0
}

func (t *keywordTable) name(c byte) (Flag, bool) {
	if c < 'a' || c > 'z' || t.names[c-'a'] == "" {
		return "", false
	}
	return Flag(t.names[c-'a']), true
}

func (t *keywordTable) list() []Flag {
	var out []Flag
	for _, n := range t.names {
		if n != "" {
			out = append(out, Flag(n))
		}
	}
	return out
}

// validKeyword: an IMAP atom without "\" (RFC 3501 §9 flag-keyword), which
// also keeps the keywords file line-oriented.
func validKeyword(k Flag) bool {
	if k == "" || len(k) > 128 {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c <= 0x20 || c >= 0x7f {
			return false
		}
		switch c {
		case '(', ')', '{', '%', '*', '"', '\\', ']':
			return false
		}
	}
	return true
}

func (ix *index) loadKeywords() error {
	p := ix.path("dovecot-keywords")
	data, err := os.ReadFile(p)
	st, _ := statStamp(p)
	ix.kwSt = st
	ix.flagCache = nil
	if errors.Is(err, os.ErrNotExist) {
		ix.kw = keywordTable{}
		return nil
	}
	if err != nil {
		return fmt.Errorf("mailstore: read %s: %w", p, err)
	}
	t, err := parseKeywords(data)
	if err != nil {
		// Keep going without names: flags letters stay on the files.
		ix.s.log.Warn("mailstore: ignoring unreadable dovecot-keywords", "path", p, "err", err)
		t = &keywordTable{}
	}
	ix.kw = *t
	return nil
}

// keywordLetters returns info letters for keywords, defining new ones in
// dovecot-keywords (under the dotlock) as needed.
func (ix *index) keywordLetters(kws []Flag) ([]byte, error) {
	var out []byte
	var missing []Flag
	for _, k := range kws {
		if c := ix.kw.letter(k); c != 0 {
			out = append(out, c)
		} else {
			missing = append(missing, k)
		}
	}
	if len(missing) == 0 {
		return out, nil
	}
	lk, err := ix.s.lockUIDList(ix.dir)
	if err != nil {
		return nil, err
	}
	defer lk.unlock()
	if err := ix.loadKeywords(); err != nil {
		return nil, err
	}
	for _, k := range missing {
		c := ix.kw.add(k)
		if c == 0 {
			return nil, fmt.Errorf("mailstore: folder %s: more than %d keywords: %w", ix.name, maxKeywords, ErrNotPermitted)
		}
		out = append(out, c)
	}
	p := ix.path("dovecot-keywords")
	if err := ix.s.aw.WriteFile(p, ix.kw.marshal()); err != nil {
		return nil, fmt.Errorf("mailstore: write keywords of %s: %w", ix.name, err)
	}
	ix.kwSt, _ = statStamp(p)
	ix.flagCache = nil
	return out, nil
}
