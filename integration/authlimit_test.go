package integration

import (
	"strings"
	"testing"
	"time"

	"github.com/mailsuite/mailsuite"
)

// A password guesser cannot move between protocols: failures over POP3
// count for IMAP and SMTP too (one limiter per suite, per client IP), and
// once locked out even the right password is refused everywhere.
func TestAuthThrottleAcrossProtocols(t *testing.T) {
	ini := strings.Replace(configWith(officeAliases, "alice@example.com", "bob@example.com", "dave@example.com"),
		"auth_free_failures = 50\nauth_lockout_failures = 500\n", "auth_free_failures = 1\nauth_lockout_failures = 3\nauth_lockout_window = 1m\n", 1)
	if !strings.Contains(ini, "auth_lockout_failures = 3") {
		t.Fatal("the test config no longer has the limits this test replaces")
	}
	h := startSuite(t, ini, mailsuite.Options{})
	start := time.Now()
	for i := range 3 {
		if p, err := dialPOP3S(h.addr("pop3s"), h.tls, "bob@example.com", "guess-"+string(rune('a'+i))); err == nil {
			p.Close()
			t.Fatal("a wrong password was accepted")
		}
	}
	t.Logf("three failed POP3 logins took %v", time.Since(start).Round(time.Millisecond))

	if c, err := dialIMAPS(h.addr("imaps"), h.tls, "bob@example.com", users["bob@example.com"], nil); err == nil {
		c.Close()
		t.Error("IMAP let the locked-out IP log in")
	}
	if p, err := dialPOP3S(h.addr("pop3s"), h.tls, "bob@example.com", users["bob@example.com"]); err == nil {
		p.Close()
		t.Error("POP3 let the locked-out IP log in")
	}
	m := newMessage("bob@example.com", "alice@example.com", "let me in", 200)
	err := submit(h.addr("submission"), h.tls, "bob@example.com", users["bob@example.com"], "bob@example.com", []string{"alice@example.com"}, m.Raw)
	if c := smtpCode(err); c < 400 || c > 499 {
		t.Errorf("SMTP AUTH from the locked-out IP: %v, want a 4xx refusal", err)
	}
}
