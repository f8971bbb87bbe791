// Package iniedit changes an ini file as text, line by line, so that the
// comments, order and spacing a person wrote survive `mailsuite user ...`.
// It knows only sections and "key = value" lines; validation is the config
// loader's job.
package iniedit

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// ErrNoSection is returned when the named section is not in the file.
var ErrNoSection = errors.New("iniedit: no such section")

// File is an ini file's lines.
type File struct{ lines []string }

// Parse splits data into lines (a final newline is implied).
func Parse(data []byte) *File {
	s := strings.TrimSuffix(string(data), "\n")
	if s == "" {
		return &File{}
	}
	return &File{lines: strings.Split(s, "\n")}
}

// Bytes returns the file's text.
func (f *File) Bytes() []byte {
	var b bytes.Buffer
	for _, l := range f.lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// sectionName returns the name in a "[name]" line, or false.
func sectionName(line string) (string, bool) {
	t := strings.TrimSpace(line)
	if !strings.HasPrefix(t, "[") || !strings.HasSuffix(t, "]") {
		return "", false
	}
	return strings.TrimSpace(t[1 : len(t)-1]), true
}

// find returns the header index of section (compared case-insensitively,
// as mail addresses in "[user ADDRESS]" are) and the index just past its
// last line.
func (f *File) find(section string) (start, end int, ok bool) {
	start = -1
	for i, l := range f.lines {
		name, isHeader := sectionName(l)
		if !isHeader {
			continue
		}
		if start >= 0 {
			return start, i, true
		}
		if strings.EqualFold(name, section) {
			start = i
		}
	}
	if start < 0 {
		return 0, 0, false
	}
	return start, len(f.lines), true
}

// Has reports whether section exists.
func (f *File) Has(section string) bool {
	_, _, ok := f.find(section)
	return ok
}

// Sections lists section names in order.
func (f *File) Sections() []string {
	var out []string
	for _, l := range f.lines {
		if name, ok := sectionName(l); ok {
			out = append(out, name)
		}
	}
	return out
}

// AddSection appends a section with the given keys, after one blank line.
func (f *File) AddSection(section string, kv ...[2]string) {
	if n := len(f.lines); n > 0 && strings.TrimSpace(f.lines[n-1]) != "" {
		f.lines = append(f.lines, "")
	}
	f.lines = append(f.lines, "["+section+"]")
	for _, p := range kv {
		f.lines = append(f.lines, p[0]+" = "+p[1])
	}
}

// RemoveSection deletes a section, the comment lines directly above it
// (they describe it), and the blank lines it leaves behind.
func (f *File) RemoveSection(section string) error {
	start, end, ok := f.find(section)
	if !ok {
		return fmt.Errorf("%w: [%s]", ErrNoSection, section)
	}
	// Trailing blank lines belong to the gap before the next section: keep one.
	for end > start+1 && strings.TrimSpace(f.lines[end-1]) == "" {
		end--
	}
	for start > 0 && isComment(f.lines[start-1]) {
		start--
	}
	f.lines = append(f.lines[:start], f.lines[end:]...)
	// Collapse the double blank line a removal in the middle leaves.
	if start > 0 && start < len(f.lines) && strings.TrimSpace(f.lines[start-1]) == "" && strings.TrimSpace(f.lines[start]) == "" {
		f.lines = append(f.lines[:start], f.lines[start+1:]...)
	}
	for n := len(f.lines); n > 0 && strings.TrimSpace(f.lines[n-1]) == ""; n = len(f.lines) {
		f.lines = f.lines[:n-1]
	}
	return nil
}

// Set replaces key's line in section, or adds it after the section's last
// key. A missing section is an error.
func (f *File) Set(section, key, value string) error {
	start, end, ok := f.find(section)
	if !ok {
		return fmt.Errorf("%w: [%s]", ErrNoSection, section)
	}
	last := start
	for i := start + 1; i < end; i++ {
		k, _, isKV := strings.Cut(f.lines[i], "=")
		if !isKV || isComment(f.lines[i]) {
			continue
		}
		last = i
		if strings.TrimSpace(k) == key {
			f.lines[i] = key + " = " + value
			return nil
		}
	}
	f.lines = append(f.lines[:last+1], append([]string{key + " = " + value}, f.lines[last+1:]...)...)
	return nil
}

// RemoveKey deletes key's line from section; a missing key is not an error.
func (f *File) RemoveKey(section, key string) error {
	start, end, ok := f.find(section)
	if !ok {
		return fmt.Errorf("%w: [%s]", ErrNoSection, section)
	}
	for i := start + 1; i < end; i++ {
		if k, _, isKV := strings.Cut(f.lines[i], "="); isKV && !isComment(f.lines[i]) && strings.TrimSpace(k) == key {
			f.lines = append(f.lines[:i], f.lines[i+1:]...)
			return nil
		}
	}
	return nil
}

func isComment(line string) bool {
	t := strings.TrimSpace(line)
	return strings.HasPrefix(t, ";") || strings.HasPrefix(t, "#")
}
