package smtpd

import (
	"io"
	"strings"
	"testing"
)

// TestSmuggling sends messages whose body holds a second transaction after
// a fake end of data built from bare LF or bare CR ("SMTP smuggling").
// go-smtp must not end DATA there (no reply to the smuggled commands), and
// smtpd must refuse the whole message (550 5.6.0): nothing is stored.
//
// Two fakes start with a proper CRLF and a dot: go-smtp's dot-unstuffing
// drops the "." and the CR after it ("\r\n.\rX" reads as "\r\nX"), so no
// bare CR is left to refuse. Those arrive as one ordinary message (the
// smuggled lines are text in alice's copy); bob still gets nothing.
func TestSmuggling(t *testing.T) {
	const smuggled = "MAIL FROM:<ceo@example.com>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\nSubject: smuggled\r\n\r\nwire money\r\n"
	ends := map[string]struct{ fake, want string }{
		"LF.LF":     {"\n.\n", refused},
		"CRLF.LF":   {"\r\n.\n", refused},
		"LF.CRLF":   {"\n.\r\n", refused},
		"CR.CR":     {"\r.\r", refused},
		"CR.CRLF":   {"\r.\r\n", refused},
		"CRLF.CR":   {"\r\n.\r", accepted},
		"CRLF.CRCR": {"\r\n.\r\r\n", accepted},
	}
	for name, tc := range ends {
		t.Run(name, func(t *testing.T) {
			env := startServer(t, nil)
			transcript(t, env.addr, false,
				s("EHLO client.test", `^250-`),
				s("MAIL FROM:<someone@remote.test>", `^250 `),
				s("RCPT TO:<alice@example.com>", `^250 `),
				s("DATA", `^354 `),
				// One reply only: the smuggled commands were data.
				s("Subject: a\r\n\r\nhello"+tc.fake+smuggled+".\r\n", tc.want),
				s("NOOP", `^250 2\.0\.0`),
			)
			if n := len(env.inbox(t, "bob@example.com")); n != 0 {
				t.Errorf("bob got %d messages, want 0", n)
			}
			alice := env.inbox(t, "alice@example.com")
			if tc.want == refused && len(alice) != 0 || tc.want == accepted && len(alice) != 1 {
				t.Fatalf("alice got %d messages", len(alice))
			}
			for _, m := range alice {
				if err := checkLineEnds(m); err != nil {
					t.Errorf("stored message has %v: %q", err, m)
				}
			}
		})
	}
}

// TestDotStuffing checks that a line "..x" arrives as ".x" and that a
// lone "." inside a CRLF line ends the message exactly there.
func TestDotStuffing(t *testing.T) {
	env := startServer(t, nil)
	transcript(t, env.addr, false,
		s("EHLO client.test", `^250-`),
		s("MAIL FROM:<someone@remote.test>", `^250 `),
		s("RCPT TO:<alice@example.com>", `^250 `),
		s("DATA", `^354 `),
		s("Subject: a\r\n\r\n..x\r\n.\r\nNOOP\r\n", `^250 2\.0\.0 OK`, `^250 2\.0\.0`),
	)
	m := env.inbox(t, "alice@example.com")
	if len(m) != 1 || !endsWith(m[0], "\r\n\r\n.x\r\n") {
		t.Fatalf("stored %q", m)
	}
}

const (
	refused  = `^550 5\.6\.0`
	accepted = `^250 2\.0\.0 OK`
)

// checkLineEnds reports a bare CR or LF in m.
func checkLineEnds(m string) error {
	g := &lineGuard{r: strings.NewReader(m)}
	_, err := io.Copy(io.Discard, g)
	return err
}

func endsWith(s, suffix string) bool {
	return len(s) >= len(suffix) && s[len(s)-len(suffix):] == suffix
}
