package integration

import (
	"testing"

	"github.com/mailsuite/mailsuite"
)

// Mail from outside over port 25: an alias and the catch-all deliver to
// their owners (whole, readable over POP3 and IMAP); relaying to another
// domain is refused with 550 5.7.1 and nothing is queued.
func TestMailFromOutside(t *testing.T) {
	aliases := officeAliases + "@example.com = catchall@example.com\n"
	h := startSuite(t, configWith(aliases, "alice@example.com", "bob@example.com", "dave@example.com", "catchall@example.com"), mailsuite.Options{})
	mx := h.addr("smtp")

	toAlias := newMessage("customer@example.net", "sales@example.com", "Quote please", 4000)
	if err := sendMX(mx, h.tls, "customer@example.net", []string{"sales@example.com"}, toAlias.Raw); err != nil {
		t.Fatalf("to the alias: %v", err)
	}
	// Domains and local parts are case-insensitive (RFC 5321 §2.4 lets a
	// server choose for local parts; mail.ini promises it).
	toBobUpper := newMessage("customer@example.net", "Bob@EXAMPLE.com", "Case", 300)
	if err := sendMX(mx, nil, "customer@example.net", []string{"Bob@EXAMPLE.com"}, toBobUpper.Raw); err != nil {
		t.Fatalf("to Bob@EXAMPLE.com without STARTTLS: %v", err)
	}
	// A large message (a few MiB, a scanned contract) arrives whole.
	big := newMessage("customer@example.net", "sales@example.com", "Contract scan", 3<<20)
	if err := sendMX(mx, h.tls, "customer@example.net", []string{"sales@example.com"}, big.Raw); err != nil {
		t.Fatalf("large message: %v", err)
	}
	toNobody := newMessage("customer@example.net", "info@example.com", "Anyone there?", 300)
	if err := sendMX(mx, h.tls, "customer@example.net", []string{"info@example.com"}, toNobody.Raw); err != nil {
		t.Fatalf("to the catch-all: %v", err)
	}

	for _, tc := range []struct {
		name string
		from string
	}{
		{"stranger", "spammer@example.net"},
		{"forged local sender", "alice@example.com"},
	} {
		relayed := newMessage(tc.from, "victim@elsewhere.example.org", "Relay me", 200)
		err := sendMX(mx, h.tls, tc.from, []string{"victim@elsewhere.example.org"}, relayed.Raw)
		if smtpCode(err) != 550 || smtpEnhanced(err) != "5.7.1" {
			t.Errorf("%s: relay attempt over port 25: %v, want 550 5.7.1", tc.name, err)
		}
	}
	if q, err := h.s.Queue().List(); err != nil || len(q) != 0 {
		t.Errorf("relay queue after refused relays: %v, %v; want empty", q, err)
	}

	checkInbox(t, h, "bob@example.com", toAlias.ID, toBobUpper.ID, big.ID)
	checkInbox(t, h, "catchall@example.com", toNobody.ID)
	checkInbox(t, h, "alice@example.com")
}

// checkInbox reads user's INBOX over POP3 and over IMAP: both must hold
// exactly want, whole.
func checkInbox(t *testing.T, h *harness, user string, want ...string) {
	t.Helper()
	p, err := dialPOP3S(h.addr("pop3s"), h.tls, user, users[user])
	if err != nil {
		t.Fatal(err)
	}
	list, err := p.uidl()
	if err != nil {
		t.Fatal(err)
	}
	var popIDs []string
	for n := range list {
		raw, err := p.retr(n)
		if err != nil {
			t.Fatal(err)
		}
		id, err := checkMessage(raw)
		if err != nil {
			t.Fatalf("%s POP3 %d: %v", user, n, err)
		}
		popIDs = append(popIDs, id)
	}
	p.quit()
	wantIDs(t, user+" over POP3", popIDs, want...)

	c, err := dialIMAPS(h.addr("imaps"), h.tls, user, users[user], nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, msgs, err := fetchAll(c, "INBOX", true)
	if err != nil {
		t.Fatal(err)
	}
	var imapIDs []string
	for _, m := range msgs {
		id, err := checkMessage(m.Body)
		if err != nil {
			t.Fatalf("%s IMAP UID %d: %v", user, m.UID, err)
		}
		imapIDs = append(imapIDs, id)
	}
	wantIDs(t, user+" over IMAP", imapIDs, want...)
}
