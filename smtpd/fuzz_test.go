package smtpd

import (
	"bytes"
	"io"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"
)

// fuzzStates are command prefixes that walk a submission session (AUTH on
// loopback allowed) into each state before the fuzzer's bytes arrive.
var fuzzStates = []string{
	"",                              // greeted
	"EHLO f.test\r\n",               // after EHLO
	"EHLO f.test\r\nAUTH LOGIN\r\n", // inside an AUTH exchange
	"EHLO f.test\r\nAUTH PLAIN " + plainIR("alice@example.com", "alicepw") + "\r\n", // authenticated
	"EHLO f.test\r\nAUTH PLAIN " + plainIR("alice@example.com", "alicepw") + "\r\nMAIL FROM:<alice@example.com>\r\n",
	"EHLO f.test\r\nAUTH PLAIN " + plainIR("alice@example.com", "alicepw") + "\r\nMAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.com>\r\n",
	"EHLO f.test\r\nAUTH PLAIN " + plainIR("alice@example.com", "alicepw") + "\r\nMAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n",
	"EHLO f.test\r\nAUTH PLAIN " + plainIR("alice@example.com", "alicepw") + "\r\nMAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.com>\r\nBDAT 10\r\n",
}

var replyLineRE = regexp.MustCompile(`^[2-5][0-9][0-9][ -]`)

// FuzzSession feeds arbitrary bytes to a session in each state over
// loopback. Every reply must be a well-formed SMTP reply, the server must
// never hit a panic (go-smtp answers one with "Internal server error"),
// and it must keep accepting connections.
func FuzzSession(f *testing.F) {
	env := startServer(f, func(o *Options) {
		o.Role = RoleSubmission
		o.AllowInsecureAuth = true
		o.MaxMessageBytes = 1 << 16
		o.ReadTimeout = time.Second
	})
	for i := range fuzzStates {
		f.Add(uint8(i), []byte("NOOP\r\n"))
		f.Add(uint8(i), []byte("RCPT TO:<carol@example.org>\r\nDATA\r\nFrom: alice@example.com\r\n\r\nhi\r\n.\r\n"))
		f.Add(uint8(i), []byte("RSET\r\nMAIL FROM:<>\r\n"))
		f.Add(uint8(i), []byte("x\n.\nMAIL FROM:<a@b>\r\n"))
		f.Add(uint8(i), []byte(b64("alice@example.com")+"\r\n"+b64("x")+"\r\n"))
	}
	f.Add(uint8(0), []byte("STARTTLS\r\nEHLO x\r\n"))
	f.Add(uint8(2), []byte("BDAT 99999999999\r\n"))
	f.Fuzz(func(t *testing.T, state uint8, data []byte) {
		c, err := net.DialTimeout("tcp", env.addr, 2*time.Second)
		if err != nil {
			t.Fatalf("server stopped accepting: %v", err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		prefix := fuzzStates[int(state)%len(fuzzStates)]
		go func() {
			// End any DATA and the session, so most inputs finish fast.
			io.WriteString(c, prefix)
			c.Write(data)
			io.WriteString(c, "\r\n.\r\nQUIT\r\n")
		}()
		out, _ := io.ReadAll(c)
		for _, line := range strings.Split(strings.TrimSuffix(string(out), "\r\n"), "\r\n") {
			if line == "" {
				continue
			}
			if !replyLineRE.MatchString(line) && !strings.HasPrefix(line, "334 ") && line != "334" {
				t.Fatalf("malformed reply line %q", line)
			}
			if strings.Contains(line, "Internal server error") {
				t.Fatalf("server panicked: %q", line)
			}
		}
	})
}

// FuzzCheckRecipient: whatever passes has one '@', a dot-atom local part
// and a host-name domain, so later code can split it only one way.
func FuzzCheckRecipient(f *testing.F) {
	for _, s := range []string{"alice@example.com", "user%other.test@example.com", "other!u@example.com",
		"u@other.test@example.com", "u@[127.0.0.1]", "u@[IPv6:::1]", "u@example.com.", "ü@bücher.example", "a..b@x.y", "@x.y", "a@-x.y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		if checkRecipient(addr) != nil {
			return
		}
		local, domain, _ := strings.Cut(addr, "@")
		if strings.ContainsAny(domain, "@[]") || strings.HasSuffix(domain, ".") || local == "" ||
			strings.ContainsAny(local, " \t\r\n\"()<>[]:;@\\,") {
			t.Fatalf("accepted %q", addr)
		}
	})
}

// FuzzCheckFromHeader: a header is accepted only if its one From: field
// lists addresses that the permission func allowed.
func FuzzCheckFromHeader(f *testing.F) {
	for _, s := range []string{
		"From: alice@example.com\r\n\r\nbody",
		"From: Alice <alice@example.com>\r\nTo: x\r\n\r\n",
		"From: a@example.com, alice@example.com\r\n\r\n",
		"From: alice@example.com\r\nFrom: alice@example.com\r\n\r\n",
		"From: =?utf-8?q?Al=C3=AFce?= <alice@example.com>\r\n\r\n",
		"From: \"x\\\"y\" <alice@example.com>\r\n\r\n",
		"From:\r\n alice@example.com\r\n\r\n",
		"Subject: x\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var seen []string
		err := checkFromHeader(raw, func(a string) bool {
			seen = append(seen, a)
			return strings.EqualFold(a, "alice@example.com")
		})
		if err != nil {
			return
		}
		if len(seen) == 0 {
			t.Fatalf("accepted %q without checking any address", raw)
		}
		for _, a := range seen {
			if !strings.EqualFold(a, "alice@example.com") {
				t.Fatalf("accepted %q with From address %q", raw, a)
			}
		}
	})
}

// FuzzLineGuard compares lineGuard with a plain reference: data passes iff
// removing every CRLF leaves no CR and no LF.
func FuzzLineGuard(f *testing.F) {
	for _, s := range []string{"a\r\nb\r\n", "a\nb", "a\rb", "\r", "\n", "\r\r\n", "x\r\n\r\n", ""} {
		f.Add([]byte(s), uint8(3))
	}
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		g := &lineGuard{r: &chunkReader{data: data, n: int(chunk)%7 + 1}}
		got, err := io.ReadAll(g)
		stripped := bytes.ReplaceAll(data, []byte("\r\n"), nil)
		ok := !bytes.ContainsAny(stripped, "\r\n")
		if (err == nil) != ok {
			t.Fatalf("%q: err %v, want ok=%v", data, err, ok)
		}
		if err == nil && !bytes.Equal(got, data) {
			t.Fatalf("%q came out as %q", data, got)
		}
	})
}

// chunkReader returns data n bytes at a time, to cross CRLFs over reads.
type chunkReader struct {
	data []byte
	n    int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), r.n)], r.data)
	r.data = r.data[n:]
	return n, nil
}
