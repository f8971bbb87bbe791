package integration

import (
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"

	"github.com/mailsuite/mailsuite"
)

// A mailbox quota from mail.ini holds across the protocols: mail over it
// is refused temporarily (452 4.2.2, RFC 3463, so the sender retries), IMAP
// APPEND says NO [OVERQUOTA], reading still works, and once bob deletes
// mail over IMAP, delivery works again.
func TestQuotaAcrossProtocols(t *testing.T) {
	ini := configWith(officeAliases, "alice@example.com", "dave@example.com") +
		userSection("bob@example.com", users["bob@example.com"]) + "quota = 64K\n"
	h := startSuite(t, ini, mailsuite.Options{})
	var accepted []string
	var refusal error
	for range 8 {
		m := newMessage("someone@example.net", "bob@example.com", "filling up", 20_000)
		if err := sendMX(h.addr("smtp"), h.tls, "someone@example.net", []string{"bob@example.com"}, m.Raw); err != nil {
			refusal = err
			break
		}
		accepted = append(accepted, m.ID)
	}
	if refusal == nil {
		t.Fatalf("%d messages of 20 KB were accepted for a 64 KiB quota", len(accepted))
	}
	if smtpCode(refusal) != 452 || smtpEnhanced(refusal) != "4.2.2" {
		t.Errorf("over quota: %v (enhanced %q), want 452 4.2.2", refusal, smtpEnhanced(refusal))
	}
	if len(accepted) < 3 {
		t.Errorf("only %d messages of 20 KB fit in 64 KiB", len(accepted))
	}
	h.onlyThese(t, "bob@example.com", accepted...)

	c, err := dialIMAPS(h.addr("imaps"), h.tls, "bob@example.com", users["bob@example.com"], nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	draft := newMessage("bob@example.com", "alice@example.com", "draft", 20_000)
	cmd := c.Append("Drafts", int64(len(draft.Raw)), nil)
	cmd.Write(draft.Raw)
	cmd.Close()
	if _, err := cmd.Wait(); err == nil || !strings.Contains(err.Error(), "OVERQUOTA") {
		t.Errorf("APPEND over quota: %v, want NO [OVERQUOTA]", err)
	}
	// Reading is never blocked by a full mailbox.
	p, err := dialPOP3S(h.addr("pop3s"), h.tls, "bob@example.com", users["bob@example.com"])
	if err != nil {
		t.Fatalf("POP3 login over quota: %v", err)
	}
	if _, err := p.retr(1); err != nil {
		t.Errorf("POP3 RETR over quota: %v", err)
	}
	p.quit()

	// Bob deletes two messages; mail is accepted again.
	if _, _, err := fetchAll(c, "INBOX", false); err != nil {
		t.Fatal(err)
	}
	var two imap.SeqSet
	two.AddRange(1, 2)
	if _, err := c.Store(two, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Collect(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Expunge().Collect(); err != nil {
		t.Fatal(err)
	}
	m := newMessage("someone@example.net", "bob@example.com", "room again", 20_000)
	if err := sendMX(h.addr("smtp"), h.tls, "someone@example.net", []string{"bob@example.com"}, m.Raw); err != nil {
		t.Errorf("after deleting mail: %v", err)
	}
	h.onlyThese(t, "bob@example.com", append(accepted[2:], m.ID)...)
}
