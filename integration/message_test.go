package integration

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
)

// Every test message carries a unique Message-ID and X-Test-Body-SHA256,
// the hash of its body, so a test can tell which message a stored file is
// and whether it arrived whole. The body has lines that are or start with
// a dot (dot-stuffing in SMTP DATA and POP3 RETR, RFC 5321 §4.5.2, RFC
// 1939 §3), 8-bit UTF-8 text, and is padded to a size.

type testMessage struct {
	ID  string // Message-ID without angle brackets
	Raw []byte
}

// newMessage builds a message from→to with about size bytes of body.
func newMessage(from, to, subject string, size int) testMessage {
	var rnd [8]byte
	rand.Read(rnd[:])
	id := hex.EncodeToString(rnd[:]) + "@test.example.com"
	var body bytes.Buffer
	fmt.Fprintf(&body, "Hello, this is %s.\r\n.a line that starts with a dot\r\n.\r\n..two dots\r\n", id)
	body.WriteString("Gr\u00fc\u00dfe aus K\u00f6ln (8-bit text)\r\n")
	for i := 0; body.Len() < size; i++ {
		fmt.Fprintf(&body, "line %05d of %s: the quick brown fox jumps over the lazy dog\r\n", i, id)
	}
	sum := sha256.Sum256(body.Bytes())
	var m bytes.Buffer
	fmt.Fprintf(&m, "From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nMessage-ID: <%s>\r\n", from, to, subject, id)
	fmt.Fprintf(&m, "Date: Sun, 22 Nov 2026 12:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n")
	fmt.Fprintf(&m, "X-Test-Body-SHA256: %s\r\n\r\n", hex.EncodeToString(sum[:]))
	m.Write(body.Bytes())
	return testMessage{ID: id, Raw: m.Bytes()}
}

var (
	reMessageID = regexp.MustCompile(`(?im)^Message-ID:\s*<([^>]+)>`)
	reBodyHash  = regexp.MustCompile(`(?im)^X-Test-Body-SHA256:\s*([0-9a-f]{64})`)
)

// checkMessage returns the Message-ID of a stored or fetched message and
// an error if its body is not exactly what was sent (truncated, damaged).
// Line endings are normalised to CRLF first: a store may keep LF.
func checkMessage(raw []byte) (string, error) {
	raw = toCRLF(raw)
	sep := bytes.Index(raw, []byte("\r\n\r\n"))
	if sep < 0 {
		return "", fmt.Errorf("no end of header in %d bytes", len(raw))
	}
	hdr, body := raw[:sep+2], raw[sep+4:]
	mid := reMessageID.FindSubmatch(hdr)
	if mid == nil {
		return "", fmt.Errorf("no Message-ID in header %q", abbrev(hdr))
	}
	want := reBodyHash.FindSubmatch(hdr)
	if want == nil {
		return string(mid[1]), fmt.Errorf("%s: no X-Test-Body-SHA256", mid[1])
	}
	got := sha256.Sum256(body)
	if hex.EncodeToString(got[:]) != string(want[1]) {
		return string(mid[1]), fmt.Errorf("%s: body damaged (%d bytes, hash mismatch)", mid[1], len(body))
	}
	return string(mid[1]), nil
}

func toCRLF(b []byte) []byte {
	if !bytes.Contains(b, []byte("\n")) || bytes.Count(b, []byte("\r\n")) == bytes.Count(b, []byte("\n")) {
		return b
	}
	b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
	return bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n"))
}

func abbrev(b []byte) string {
	s := string(b)
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return strings.ToValidUTF8(s, "?")
}
