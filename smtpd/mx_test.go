package smtpd

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestMXEHLOAdvertises(t *testing.T) {
	env := startServer(t, func(o *Options) { o.TLSMode = TLSOptional; o.TLSConfig = serverTLS(t) })
	got := ehlo(t, env.addr, false)
	for _, want := range []string{"SIZE 26214400", "PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8", "CHUNKING", "STARTTLS"} {
		if !hasCap(got, want) {
			t.Errorf("EHLO reply lacks %s:\n%s", want, got)
		}
	}
	if strings.Contains(got, "AUTH") {
		t.Errorf("MX offers AUTH:\n%s", got)
	}
}

// ehlo connects and returns the whole EHLO reply.
func ehlo(t *testing.T, addr string, implicitTLS bool) string {
	t.Helper()
	c := transcript(t, addr, implicitTLS, s("EHLO client.test"))
	got, err := c.reply()
	if err != nil {
		t.Fatalf("EHLO: %v", err)
	}
	return got
}

func hasCap(reply, capability string) bool {
	for _, l := range strings.Split(reply, "\n") {
		if len(l) > 4 && l[4:] == capability {
			return true
		}
	}
	return false
}

func TestMXTranscripts(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*Options)
		steps []step
	}{
		{"deliver to local user", nil, []step{
			s("EHLO client.test", `^250-Hello`),
			s("MAIL FROM:<someone@remote.test>", `^250 2.0.0`),
			s("RCPT TO:<alice@example.com>", `^250 2.0.0`),
			s("DATA", `^354 `),
			s(msg("someone@remote.test", "alice@example.com", "hi", "hello"), `^250 2.0.0 OK: queued as [A-Z0-9]+$`),
			s("QUIT", `^221 `),
		}},
		{"unknown local user", nil, []step{
			s("EHLO client.test", `^250-`),
			s("MAIL FROM:<someone@remote.test>", `^250 `),
			s("RCPT TO:<nobody@example.com>", `^550 5\.1\.1 `),
		}},
		{"relay denied", nil, []step{
			s("EHLO client.test", `^250-`),
			s("MAIL FROM:<someone@remote.test>", `^250 `),
			s("RCPT TO:<victim@other.test>", `^550 5\.7\.1 Relaying denied`),
			s("DATA", `^502 5\.5\.1`),
		}},
		{"trusted network may relay", func(o *Options) {
			o.TrustedNetworks = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
		}, []step{
			s("EHLO client.test", `^250-`),
			s("MAIL FROM:<app@example.com>", `^250 `),
			s("RCPT TO:<victim@other.test>", `^250 `),
			s("DATA", `^354 `),
			s(msg("app@example.com", "victim@other.test", "x", "y"), `^250 2\.0\.0`),
		}},
		{"trusted network without relay", func(o *Options) {
			o.TrustedNetworks = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
			o.Relay = nil
		}, []step{
			s("EHLO client.test", `^250-`),
			s("MAIL FROM:<app@example.com>", `^250 `),
			s("RCPT TO:<victim@other.test>", `^550 5\.7\.1 Relaying not available`),
		}},
		{"untrusted network list", func(o *Options) {
			o.TrustedNetworks = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
		}, []step{
			s("EHLO client.test", `^250-`),
			s("MAIL FROM:<app@example.com>", `^250 `),
			s("RCPT TO:<victim@other.test>", `^550 5\.7\.1`),
		}},
		{"over quota at RCPT", nil, []step{
			s("EHLO client.test", `^250-`),
			s("MAIL FROM:<a@remote.test> SIZE=5000", `^250 `),
			s("RCPT TO:<dave@example.com>", `^452 4\.2\.2 Mailbox full`),
			s("RCPT TO:<bob@example.com>", `^250 `),
		}},
		{"SIZE over limit", func(o *Options) { o.MaxMessageBytes = 1000 }, []step{
			s("EHLO client.test", `SIZE 1000`),
			s("MAIL FROM:<a@remote.test> SIZE=1001", `^552 5\.3\.4`),
		}},
		{"DATA over limit", func(o *Options) { o.MaxMessageBytes = 100 }, []step{
			s("EHLO client.test", `^250-`),
			s("MAIL FROM:<a@remote.test>", `^250 `),
			s("RCPT TO:<alice@example.com>", `^250 `),
			s("DATA", `^354 `),
			s(msg("a@remote.test", "alice@example.com", "big", strings.Repeat("x", 200)), `^552 5\.3\.4`),
			s("NOOP", `^250 `),
		}},
		{"recipient limit", func(o *Options) { o.MaxRecipients = 2 }, []step{
			s("EHLO client.test", `^250-`),
			s("MAIL FROM:<a@remote.test>", `^250 `),
			s("RCPT TO:<alice@example.com>", `^250 `),
			s("RCPT TO:<bob@example.com>", `^250 `),
			s("RCPT TO:<carol@example.org>", `^452 4\.5\.3`),
		}},
		{"line too long in DATA", func(o *Options) { o.MaxLineLength = 100 }, []step{
			s("EHLO client.test", `^250-`),
			s("MAIL FROM:<a@remote.test>", `^250 `),
			s("RCPT TO:<alice@example.com>", `^250 `),
			s("DATA", `^354 `),
			s("Subject: x\r\n\r\n"+strings.Repeat("y", 150)+"\r\n.\r\n", `^500 5\.4\.0`),
		}},
		{"command line too long", func(o *Options) { o.MaxLineLength = 100 }, []step{
			s("EHLO "+strings.Repeat("a", 150), `^500 5\.4\.0`),
		}},
		{"BDAT", nil, []step{
			s("EHLO client.test", `CHUNKING`),
			s("MAIL FROM:<a@remote.test>", `^250 `),
			s("RCPT TO:<alice@example.com>", `^250 `),
			s(bdat("Subject: x\r\n", false), `^250 2\.0\.0 Continue`),
			s(bdat("\r\nhello\r\n", true), `^250 2\.0\.0 OK: queued as`),
		}},
		{"RSET between BDAT chunks", nil, []step{
			s("EHLO client.test", `^250-`),
			s("MAIL FROM:<a@remote.test>", `^250 `),
			s("RCPT TO:<alice@example.com>", `^250 `),
			s(bdat("Subject: x\r\n", false), `^250 2\.0\.0 Continue`),
			s("RSET", `^250 `),
			s(bdat("\r\nlost\r\n", true), `^502 5\.5\.1`),
			s("MAIL FROM:<a@remote.test>", `^250 `),
			s("RCPT TO:<alice@example.com>", `^250 `),
			s(bdat("Subject: y\r\n\r\nkept\r\n", true), `^250 2\.0\.0 OK`),
		}},
		{"BDAT with bare LF", nil, []step{
			s("EHLO client.test", `^250-`),
			s("MAIL FROM:<a@remote.test>", `^250 `),
			s("RCPT TO:<alice@example.com>", `^250 `),
			s(bdat("Subject: x\n\nhello\r\n", true), `^550 5\.6\.0`),
			s("NOOP", `^250 `),
		}},
		{"pipelined transaction", nil, []step{
			s("EHLO client.test", `PIPELINING`),
			s("MAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.com>\r\nRCPT TO:<nobody@example.com>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n",
				`^250 2\.0\.0 Roger`, `^250 `, `^550 5\.1\.1`, `^250 `, `^354 `),
			s(msg("a@remote.test", "alice@example.com", "p", "q")+"RSET\r\nMAIL FROM:<>\r\nRCPT TO:<bob@example.com>\r\nQUIT\r\n",
				`^250 2\.0\.0 OK`, `^250 `, `^250 `, `^250 `, `^221 `),
		}},
		{"MX offers no AUTH", nil, []step{
			s("EHLO client.test", `^250-`),
			s("AUTH PLAIN "+plainIR("alice@example.com", "alicepw"), `^503 5\.5\.1`),
		}},
		{"MAIL needs TLS when required", func(o *Options) { o.TLSMode = TLSRequired; o.TLSConfig = serverTLS(t) }, []step{
			s("EHLO client.test", `STARTTLS`),
			s("MAIL FROM:<a@remote.test>", `^530 5\.7\.0`),
			s("STARTTLS", `^220 `),
			s("<starttls>"),
			s("EHLO client.test", `^250-`),
			s("MAIL FROM:<a@remote.test>", `^250 `),
		}},
		{"RCPT before MAIL", nil, []step{
			s("EHLO client.test", `^250-`),
			s("RCPT TO:<alice@example.com>", `^502 5\.5\.1`),
		}},
		{"address literal and bad syntax", nil, []step{
			s("EHLO client.test", `^250-`),
			s("MAIL FROM:<a@remote.test>", `^250 `),
			s("RCPT TO:<alice@[127.0.0.1]>", `^550 5\.7\.1`),
			s("RCPT TO:<alice@example.com.>", `^553 5\.1\.3`),
			s("RCPT TO:<alice>", `^501 5\.5\.2|^553 5\.1\.3`),
			s("RCPT TO:<alice@example.com\rX-Evil:>", `^553 5\.1\.3`),
		}},
		{"control characters in the sender", nil, []step{
			s("EHLO client.test", `^250-`),
			s("MAIL FROM:<a@remote.test\rX-Evil:>", `^553 5\.1\.7`),
			s("MAIL FROM:<a\x01b@remote.test>", `^553 5\.1\.7`),
			s("MAIL FROM:<a@remote.test>", `^250 `),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := startServer(t, tt.edit)
			transcript(t, env.addr, false, tt.steps...)
		})
	}
}

func TestDataTimeout(t *testing.T) {
	env := startServer(t, func(o *Options) { o.DataTimeout = 200 * time.Millisecond })
	c := transcript(t, env.addr, false,
		s("EHLO client.test", `^250-`),
		s("MAIL FROM:<a@remote.test>", `^250 `),
		s("RCPT TO:<alice@example.com>", `^250 `),
		s("DATA", `^354 `),
		s("Subject: slow\r\n\r\npart", `^451 4\.4\.2`),
	)
	// What the client sends after the timeout is never read as commands.
	io.WriteString(c.conn, "\r\nRCPT TO:<bob@example.com>\r\n")
	if got, err := c.reply(); err == nil {
		t.Fatalf("after a data timeout the server answered %q", got)
	}
	if n := len(env.inbox(t, "alice@example.com")); n != 0 {
		t.Errorf("alice got %d messages", n)
	}
}

func TestMXStoresWithTraceHeaders(t *testing.T) {
	env := startServer(t, nil)
	transcript(t, env.addr, false,
		s("EHLO client.test", `^250-`),
		s("MAIL FROM:<someone@remote.test>", `^250 `),
		s("RCPT TO:<alice@example.com>", `^250 `),
		s("DATA", `^354 `),
		s("Subject: t\r\n\r\n..leading dot\r\nbody\r\n.\r\n", `^250 2\.0\.0 OK: queued as (\w+)$`),
	)
	got := env.inbox(t, "alice@example.com")
	if len(got) != 1 {
		t.Fatalf("alice has %d messages, want 1", len(got))
	}
	want, err := os.ReadFile("testdata/received-mx.golden")
	if err != nil {
		t.Fatal(err)
	}
	if norm := normalizeID(got[0]); norm != string(want) {
		t.Errorf("stored message:\n%q\nwant (testdata/received-mx.golden):\n%q", norm, want)
	}
}

// bdat frames chunk as a BDAT command (RFC 3030 §2).
func bdat(chunk string, last bool) string {
	cmd := fmt.Sprintf("BDAT %d", len(chunk))
	if last {
		cmd += " LAST"
	}
	return cmd + "\r\n" + chunk
}

// normalizeID replaces the random message ID in a Received header.
func normalizeID(m string) string {
	i := strings.Index(m, " id ")
	if i < 0 {
		return m
	}
	j := strings.IndexAny(m[i+4:], "\r\n;")
	return m[:i+4] + "ID" + m[i+4+j:]
}

func TestMultiRecipientHardLinks(t *testing.T) {
	env := startServer(t, nil)
	transcript(t, env.addr, false,
		s("EHLO client.test", `^250-`),
		s("MAIL FROM:<someone@remote.test>", `^250 `),
		s("RCPT TO:<team@example.com>", `^250 `),     // alice, bob, carol
		s("RCPT TO:<ALICE@Example.COM>", `^250 `),    // alice again: deduplicated
		s("RCPT TO:<anything@example.org>", `^250 `), // catch-all: carol again
		s("DATA", `^354 `),
		s(msg("someone@remote.test", "team@example.com", "all", "hands"), `^250 2\.0\.0`),
	)
	var files []string
	for _, u := range []string{"alice@example.com", "bob@example.com", "carol@example.org"} {
		f := env.inboxFiles(t, u)
		if len(f) != 1 {
			t.Fatalf("%s has %d files, want 1: %v", u, len(f), f)
		}
		files = append(files, f[0])
	}
	a, err := os.Stat(files[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files[1:] {
		b, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if !os.SameFile(a, b) {
			t.Errorf("%s and %s are not hard links of one file", files[0], f)
		}
	}
	for _, u := range []string{"alice@example.com", "bob@example.com", "carol@example.org"} {
		if n := len(env.inbox(t, u)); n != 1 {
			t.Fatalf("%s has %d messages in the store, want 1", u, n)
		}
	}
	if m := env.inbox(t, "alice@example.com")[0]; strings.Contains(m, "\tfor <") {
		t.Errorf("Received names a recipient of a multi-recipient message:\n%s", m)
	}
}

func TestReverseDNSInReceived(t *testing.T) {
	var lookups atomic.Int32
	env := startServer(t, func(o *Options) {
		o.LookupAddr = func(_ context.Context, addr string) ([]string, error) {
			lookups.Add(1)
			if addr != "127.0.0.1" {
				t.Errorf("looked up %q", addr)
			}
			return []string{"client.example.net."}, nil
		}
	})
	steps := []step{s("EHLO client.test", `^250-`)}
	for range 2 {
		steps = append(steps,
			s("MAIL FROM:<a@remote.test>", `^250 `),
			s("RCPT TO:<alice@example.com>", `^250 `),
			s("DATA", `^354 `),
			s(msg("a@remote.test", "alice@example.com", "x", "y"), `^250 `))
	}
	transcript(t, env.addr, false, steps...)
	for _, m := range env.inbox(t, "alice@example.com") {
		if !strings.Contains(m, "Received: from client.test (client.example.net [127.0.0.1])\r\n") {
			t.Errorf("Received lacks the reverse name:\n%s", m)
		}
	}
	if n := lookups.Load(); n != 1 {
		t.Errorf("%d lookups for one connection, want 1", n)
	}
}
