package imapd

import (
	"bytes"
	"io"
	"strings"
	"unicode/utf8"

	gomessage "github.com/emersion/go-message"
)

// maxSearchParts bounds the MIME parts one message contributes to a BODY or
// TEXT search (a hostile message can have very many).
const maxSearchParts = 500

// searchableText returns a message's header (encoded words decoded) and its
// body text with transfer encodings undone and Latin-1 family charsets
// turned into UTF-8, so SEARCH BODY/TEXT find words in base64 and
// quoted-printable parts as Dovecot does (RFC 3501 §6.4.4 leaves the
// matching to the server; clients expect decoded text). Anything that does
// not decode is searched as it is stored.
func searchableText(raw []byte) (header, body string) {
	head, rest, ok := bytes.Cut(raw, []byte("\r\n\r\n"))
	if !ok {
		return decodeWords(string(raw)), ""
	}
	header = decodeWords(string(head))
	// Unknown charsets or encodings still yield an entity; only a broken
	// header yields none.
	e, _ := gomessage.Read(bytes.NewReader(raw))
	if e == nil {
		return header, string(rest)
	}
	var sb strings.Builder
	parts := 0
	e.Walk(func(_ []int, part *gomessage.Entity, _ error) error {
		parts++
		if parts > maxSearchParts {
			return io.EOF
		}
		if part == nil || part.MultipartReader() != nil {
			return nil
		}
		b, rerr := io.ReadAll(io.LimitReader(part.Body, int64(len(raw))+1))
		if rerr != nil {
			return nil
		}
		_, params, _ := part.Header.ContentType()
		sb.WriteString(toUTF8(b, params["charset"]))
		sb.WriteString("\n")
		return nil
	})
	if sb.Len() == 0 {
		return header, string(rest)
	}
	return header, sb.String()
}

// toUTF8 converts the single-byte charsets go-message cannot (it has no
// tables without golang.org/x/text) when they are Latin-1 compatible.
func toUTF8(b []byte, charset string) string {
	if utf8.Valid(b) {
		return string(b)
	}
	switch strings.ToLower(charset) {
	case "iso-8859-1", "latin1", "iso-8859-15", "windows-1252", "cp1252":
		r := make([]rune, len(b))
		for i, c := range b {
			r[i] = rune(c)
		}
		return string(r)
	}
	return string(b)
}
