package integration

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

// The mail.ini the project ships, run by the binary as a new admin would
// (only its ports moved to free ones): mail from outside to postmaster@
// reaches the demo user through the shipped alias, who reads it over IMAP
// and POP3 with the documented password (argon2id hash, TLS verified).
func TestShippedConfigEndToEnd(t *testing.T) {
	data, err := os.ReadFile("../mail.ini")
	if err != nil {
		t.Fatal(err)
	}
	ini := regexp.MustCompile(`(?m)^listen = 127\.0\.0\.1:2\d+$`).ReplaceAllString(string(data), "listen = 127.0.0.1:0")
	dir := t.TempDir()
	path := filepath.Join(dir, "mail.ini")
	if err := os.WriteFile(path, []byte(ini), 0o600); err != nil {
		t.Fatal(err)
	}
	c := startChild(t, path)
	tc := clientTLS(t, filepath.Join(dir, "data"))
	m := newMessage("someone@example.net", "postmaster@example.com", "Hello postmaster", 1000)
	if err := sendMX(c.addrs["smtp"], tc, "someone@example.net", []string{"postmaster@example.com"}, m.Raw); err != nil {
		t.Fatalf("mail to postmaster@: %v", err)
	}
	const demo, demoPass = "demo@example.com", "demo-change-me" // README
	ic, err := dialIMAPS(c.addrs["imaps"], tc, demo, demoPass, nil)
	if err != nil {
		t.Fatalf("demo user over IMAP: %v", err)
	}
	defer ic.Close()
	_, msgs, err := fetchAll(ic, "INBOX", true)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 {
		t.Fatalf("demo INBOX holds %d messages, want 1", len(msgs))
	}
	if id, err := checkMessage(msgs[0].Body); err != nil || id != m.ID {
		t.Errorf("demo's message: %q %v", id, err)
	}
	p, err := dialPOP3S(c.addrs["pop3s"], tc, demo, demoPass)
	if err != nil {
		t.Fatalf("demo user over POP3: %v", err)
	}
	if raw, err := p.retr(1); err != nil {
		t.Error(err)
	} else if id, err := checkMessage(raw); err != nil || id != m.ID {
		t.Errorf("demo's message over POP3: %q %v", id, err)
	}
	p.quit()
	if err := c.term(10 * time.Second); err != nil {
		t.Errorf("SIGTERM: %v", err)
	}
}
