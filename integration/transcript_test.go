package integration

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-sasl"

	"github.com/mailsuite/mailsuite"
)

// The protocol transcript ([log] transcript) and the server log record
// every login, but never a password: not in clear (IMAP LOGIN, POP3 PASS)
// nor base64-encoded (AUTH PLAIN with an initial response, AUTH LOGIN
// in continuation lines), over any of the three protocols.
func TestTranscriptHidesPasswords(t *testing.T) {
	ini := configWith(officeAliases+"[log]\ntranscript = transcript.log\n", "alice@example.com", "bob@example.com", "dave@example.com")
	h := startSuite(t, ini, mailsuite.Options{})
	user, pass := "bob@example.com", users["bob@example.com"]

	// SMTP: AUTH PLAIN (initial response) and AUTH LOGIN (continuations).
	m := newMessage(user, "alice@example.com", "transcript", 300)
	if err := submit(h.addr("submission"), h.tls, user, pass, user, []string{"alice@example.com"}, m.Raw); err != nil {
		t.Fatal(err)
	}
	c, err := dialSMTP(h.addr("submission"), h.tls, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Auth(sasl.NewLoginClient(user, pass)); err != nil {
		t.Fatalf("AUTH LOGIN: %v", err)
	}
	c.Quit()
	// IMAP: LOGIN and AUTHENTICATE PLAIN.
	ic, err := dialIMAPS(h.addr("imaps"), h.tls, user, pass, nil)
	if err != nil {
		t.Fatal(err)
	}
	ic.Logout().Wait()
	ic.Close()
	ic, err = dialIMAPSUnauthenticated(h.addr("imaps"), h.tls)
	if err != nil {
		t.Fatal(err)
	}
	if err := ic.Authenticate(sasl.NewPlainClient("", user, pass)); err != nil {
		t.Fatalf("AUTHENTICATE PLAIN: %v", err)
	}
	ic.Logout().Wait()
	ic.Close()
	// POP3: USER/PASS and AUTH PLAIN with an initial response (RFC 5034).
	p, err := dialPOP3S(h.addr("pop3s"), h.tls, user, pass)
	if err != nil {
		t.Fatal(err)
	}
	p.quit()
	p, err = dialPOP3SGreeting(h.addr("pop3s"), h.tls)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.cmd("AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+pass))); err != nil {
		t.Fatalf("POP3 AUTH PLAIN: %v", err)
	}
	p.quit()

	data, err := os.ReadFile(filepath.Join(h.dir, "transcript.log"))
	if err != nil {
		t.Fatal(err)
	}
	transcript := string(data)
	for _, want := range []string{"submission", "imaps", "pop3s", "AUTH", "LOGIN", "PASS"} {
		if !strings.Contains(transcript, want) {
			t.Errorf("transcript has no %q: is it recording?\n%s", want, transcript)
		}
	}
	secrets := []string{
		pass,
		base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass)),
		base64.StdEncoding.EncodeToString([]byte(pass)),
	}
	for _, s := range secrets {
		if strings.Contains(transcript, s) {
			t.Errorf("transcript contains the password (%q):\n%s", s, transcript)
		}
		if strings.Contains(h.logs.String(), s) {
			t.Errorf("server log contains the password (%q)", s)
		}
	}
}
