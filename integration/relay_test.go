package integration

import (
	"bytes"
	"testing"
	"time"

	"github.com/mailsuite/mailsuite"
)

// Mail for another domain through the whole suite: alice submits to two
// remote recipients; the relay delivers one to the smarthost (a loopback
// sink), and the other's permanent refusal comes back to alice as a DSN
// (RFC 3464 in multipart/report, RFC 6522) that she reads over IMAP and
// POP3 like any other mail.
func TestRelayDeliversAndBounces(t *testing.T) {
	sink := startSink(t)
	relayTo := "[relay]\nsmarthost = " + sink.addr + "\nsmarthost_tls = none\n"
	h := startSuite(t, configWith(officeAliases+relayTo, "alice@example.com", "bob@example.com", "dave@example.com"), mailsuite.Options{})
	good, bad := "friend@elsewhere.example.org", "reject-me@elsewhere.example.org"
	m := newMessage("alice@example.com", good, "Hello out there", 5000)
	if err := submit(h.addr("submission"), h.tls, "alice@example.com", users["alice@example.com"], "alice@example.com", []string{good, bad}, m.Raw); err != nil {
		t.Fatalf("submission: %v", err)
	}
	waitFor(t, 10*time.Second, "the message to reach the smarthost", func() bool { return sink.count(m.ID) > 0 })

	var dsn []byte
	waitFor(t, 10*time.Second, "a bounce in alice's INBOX", func() bool {
		c, err := dialIMAPS(h.addr("imaps"), h.tls, "alice@example.com", users["alice@example.com"], nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, msgs, err := fetchAll(c, "INBOX", true)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) > 0 {
			dsn = msgs[0].Body
		}
		return len(msgs) > 0
	})
	for _, want := range []string{
		"multipart/report", "report-type=delivery-status",
		"Final-Recipient: rfc822; " + bad, "Action: failed", "Status: 5.1.1",
		"Message-ID: <" + m.ID + ">", // the original header, returned
	} {
		if !bytes.Contains(bytes.ReplaceAll(dsn, []byte("\r\n\t"), []byte(" ")), []byte(want)) {
			t.Errorf("bounce lacks %q:\n%s", want, dsn)
		}
	}
	if bytes.Contains(dsn, []byte("Final-Recipient: rfc822; "+good)) {
		t.Errorf("bounce names the recipient that was delivered:\n%s", dsn)
	}
	p, err := dialPOP3S(h.addr("pop3s"), h.tls, "alice@example.com", users["alice@example.com"])
	if err != nil {
		t.Fatal(err)
	}
	raw, err := p.retr(1)
	if err != nil {
		t.Fatal(err)
	}
	p.quit()
	if !bytes.Equal(toCRLF(raw), toCRLF(dsn)) {
		t.Errorf("POP3 and IMAP return different bounces (%d and %d bytes)", len(raw), len(dsn))
	}
	if n := sink.count(m.ID); n != 1 {
		t.Errorf("smarthost got the message %d times", n)
	}
	// Done entries leave the queue (the bounce's entry may still be
	// finishing when alice can already read it).
	waitFor(t, 5*time.Second, "an empty queue", func() bool {
		q, err := h.s.Queue().List()
		if err != nil {
			t.Fatal(err)
		}
		return len(q) == 0
	})
}
