package integration

import (
	"crypto/hmac"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"

	"github.com/mailsuite/mailsuite"
)

// An admin adds a user with `mailsuite user add` while the server runs:
// the file gets an argon2id hash and CRAM-MD5 state, never the password;
// soon (argon2id is slow on purpose; the 2 s reload promise is
// TestAccountChangesWhileRunning's) the user logs in with PLAIN and with
// CRAM-MD5 (precomputed state, RFC 2195) over SMTP, IMAP and POP3.
func TestUserAddedWithTheCLI(t *testing.T) {
	h := startSuite(t, configWith(officeAliases, "alice@example.com", "bob@example.com", "dave@example.com"), mailsuite.Options{})
	user, pass := "erin@example.com", "erin-secret-7"
	cmd := exec.Command(mailsuiteBinary(t), "user", "add", "-config", h.iniPath, user)
	cmd.Stdin = strings.NewReader(pass + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mailsuite user add: %v\n%s", err, out)
	}
	added := time.Now()
	data, err := os.ReadFile(h.iniPath)
	if err != nil {
		t.Fatal(err)
	}
	if ini := string(data); strings.Contains(ini, pass) || !strings.Contains(ini, "{ARGON2ID}") || !strings.Contains(ini, "{CRAM-MD5}") {
		t.Fatalf("mail.ini after user add:\n%s", ini)
	}
	waitFor(t, 10*time.Second, "the new user to log in over IMAP", func() bool {
		c, err := dialIMAPS(h.addr("imaps"), h.tls, user, pass, nil)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	t.Logf("IMAP login %v after user add", time.Since(added).Round(time.Millisecond))

	// CRAM-MD5 over each protocol.
	c, err := dialSMTP(h.addr("submission"), h.tls, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Auth(&cramMD5{user, pass}); err != nil {
		t.Errorf("SMTP AUTH CRAM-MD5: %v", err)
	}
	c.Quit()
	ic, err := dialIMAPSUnauthenticated(h.addr("imaps"), h.tls)
	if err != nil {
		t.Fatal(err)
	}
	if err := ic.Authenticate(&cramMD5{user, pass}); err != nil {
		t.Errorf("IMAP AUTHENTICATE CRAM-MD5: %v", err)
	}
	ic.Close()
	p, err := dialPOP3SGreeting(h.addr("pop3s"), h.tls)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	chalLine, err := p.raw("AUTH CRAM-MD5")
	if err != nil || !strings.HasPrefix(chalLine, "+ ") {
		t.Fatalf("POP3 AUTH CRAM-MD5: %q %v", chalLine, err)
	}
	chal, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(chalLine, "+ "))
	if err != nil {
		t.Fatal(err)
	}
	resp, _ := (&cramMD5{user, pass}).Next(chal)
	if line, err := p.raw(base64.StdEncoding.EncodeToString(resp)); err != nil || !strings.HasPrefix(line, "+OK") {
		t.Errorf("POP3 AUTH CRAM-MD5: %q %v", line, err)
	}
	// And PLAIN over SMTP, with the hash.
	m := newMessage(user, "alice@example.com", "hello from erin", 300)
	if err := submit(h.addr("submission"), h.tls, user, pass, user, []string{"alice@example.com"}, m.Raw); err != nil {
		t.Errorf("SMTP AUTH PLAIN: %v", err)
	}
}

// cramMD5 is the client side of CRAM-MD5 (RFC 2195), which go-sasl lacks.
type cramMD5 struct{ user, pass string }

var _ sasl.Client = (*cramMD5)(nil)

func (c *cramMD5) Start() (string, []byte, error) { return "CRAM-MD5", nil, nil }

func (c *cramMD5) Next(challenge []byte) ([]byte, error) {
	mac := hmac.New(md5.New, []byte(c.pass))
	mac.Write(challenge)
	return []byte(c.user + " " + hex.EncodeToString(mac.Sum(nil))), nil
}
