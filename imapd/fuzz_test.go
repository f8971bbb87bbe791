package imapd

import (
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"
)

// FuzzDecodeCached: arbitrary cache bytes never panic; what decodes
// re-encodes to the same bytes.
func FuzzDecodeCached(f *testing.F) {
	for _, m := range []string{mimeMsg, testMsg("a", "b"), "", "Content-Type: multipart/mixed\r\n\r\n", "Content-Type: message/rfc822\r\n\r\nSubject: x\r\n\r\ny"} {
		env, bs := parseMessage(strings.NewReader(m))
		f.Add(encodeCached(env, bs))
	}
	f.Add([]byte{cacheVersion, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		subj, serr := decodeCachedSubject(b)
		env, bs, err := decodeCached(b)
		if err != nil {
			return
		}
		if serr != nil || subj != env.Subject {
			t.Fatalf("subject fast path %q (%v), full decode %q", subj, serr, env.Subject)
		}
		again := encodeCached(env, bs)
		env2, bs2, err := decodeCached(again)
		if err != nil {
			t.Fatalf("re-encoded entry does not decode: %v", err)
		}
		if normalise(bs) != normalise(bs2) || env.Subject != env2.Subject || !env.Date.Equal(env2.Date) {
			t.Fatalf("round trip changed the entry")
		}
	})
}

// FuzzParseMessage: any message parses without panic into a structure the
// cache round-trips and go-imap can write (multiparts have parts).
func FuzzParseMessage(f *testing.F) {
	f.Add(mimeMsg)
	f.Add(testMsg("x", "y"))
	f.Add("Content-Type: multipart/digest; boundary=b\r\n\r\n--b\r\n\r\nSubject: d\r\n\r\nz\r\n--b--\r\n")
	f.Add("Content-Type: multipart/mixed; boundary=\r\n\r\n")
	f.Add("no header at all")
	f.Fuzz(func(t *testing.T, msg string) {
		env, bs := parseMessage(newCRLFReader(strings.NewReader(msg)))
		checkParts(t, bs)
		env2, bs2, err := decodeCached(encodeCached(env, bs))
		if err != nil {
			t.Fatalf("cache round trip: %v", err)
		}
		if env2.Subject != env.Subject || normalise(bs) != normalise(bs2) || !reflect.DeepEqual(env.From, env2.From) {
			t.Fatalf("cache round trip changed the entry")
		}
	})
}

// FuzzCheckName: an accepted name is valid UTF-8, relative, without empty,
// "." or ".." levels and without control characters.
func FuzzCheckName(f *testing.F) {
	for _, s := range []string{"INBOX", "a/b", "../x", "/abs", "a//b", ".", "x\x00y", "Ünïcødé/Sub", strings.Repeat("a", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if checkName(name) != nil {
			return
		}
		if !utf8.ValidString(name) || strings.HasPrefix(name, "/") || len(name) > maxNameLen {
			t.Fatalf("accepted %q", name)
		}
		for _, part := range strings.Split(name, "/") {
			if part == "" || part == "." || part == ".." || strings.HasPrefix(part, ".") {
				t.Fatalf("accepted %q", name)
			}
		}
		for _, r := range name {
			if r < 0x20 || r == 0x7f {
				t.Fatalf("accepted control character in %q", name)
			}
		}
	})
}

func checkParts(t *testing.T, bs imap.BodyStructure) {
	t.Helper()
	switch b := bs.(type) {
	case *imap.BodyStructureMultiPart:
		if len(b.Children) == 0 {
			t.Fatal("multipart without parts")
		}
		for _, c := range b.Children {
			checkParts(t, c)
		}
	case *imap.BodyStructureSinglePart:
		if b.Type == "" || b.Subtype == "" {
			t.Fatalf("empty type %q/%q", b.Type, b.Subtype)
		}
		if b.Type == "text" && b.Text == nil {
			t.Fatal("text part without line count")
		}
		if b.MessageRFC822 != nil {
			checkParts(t, b.MessageRFC822.BodyStructure)
		}
	}
}

// normalise compares structures by their encoding (empty and nil maps
// encode alike).
func normalise(bs imap.BodyStructure) string {
	e := encoder{}
	e.body(bs)
	return string(e.b)
}

// FuzzSearchableText: any message decodes for SEARCH without panicking.
func FuzzSearchableText(f *testing.F) {
	f.Add(mimeMsg)
	f.Add("Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!\r\n")
	f.Add("no header")
	f.Fuzz(func(t *testing.T, msg string) {
		searchableText([]byte(msg))
	})
}
