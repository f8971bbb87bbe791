package integration

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailsuite/mailsuite"
)

// mail.ini edits while the server runs: a user added logs in within two
// seconds over every protocol and gets the list's mail; a user removed can no longer log in, gets
// no more mail, and her open IMAP and POP3 sessions end.
func TestAccountChangesWhileRunning(t *testing.T) {
	withDave := configWith(officeAliases, "alice@example.com", "bob@example.com", "dave@example.com")
	h := startSuite(t, withDave, mailsuite.Options{})

	// dave's open sessions: several IMAP sessions in IDLE (his desktop,
	// his laptop, ...), POP3 in the TRANSACTION state.
	var daveIMAP []*imapclient.Client
	for range 4 {
		s, err := startIdle(h.addr("imaps"), h.tls, "dave@example.com", users["dave@example.com"])
		if err != nil {
			t.Fatal(err)
		}
		defer s.c.Close()
		daveIMAP = append(daveIMAP, s.c)
	}
	davePOP, err := dialPOP3S(h.addr("pop3s"), h.tls, "dave@example.com", users["dave@example.com"])
	if err != nil {
		t.Fatal(err)
	}
	defer davePOP.Close()
	if _, err := davePOP.cmd("STAT"); err != nil {
		t.Fatal(err)
	}

	// carol appears.
	carolPass := "carol-secret-1"
	withCarol := strings.Replace(withDave+userSection("carol@example.com", carolPass),
		"team@example.com = bob@example.com, dave@example.com", "team@example.com = bob@example.com, dave@example.com, carol@example.com", 1)
	h.rewriteConfig(withCarol)
	added := time.Now()
	waitFor(t, 2*time.Second, "carol to log in over IMAP", func() bool {
		c, err := dialIMAPS(h.addr("imaps"), h.tls, "carol@example.com", carolPass, nil)
		if err != nil {
			return false
		}
		c.Logout().Wait()
		c.Close()
		return true
	})
	waitFor(t, 2*time.Second-time.Since(added), "carol to log in over POP3", func() bool {
		p, err := dialPOP3S(h.addr("pop3s"), h.tls, "carol@example.com", carolPass)
		if err != nil {
			return false
		}
		p.quit()
		return true
	})
	m := newMessage("carol@example.com", "alice@example.com", "Hello from the new hire", 500)
	if err := submit(h.addr("submission"), h.tls, "carol@example.com", carolPass, "carol@example.com", []string{"alice@example.com"}, m.Raw); err != nil {
		t.Fatalf("carol cannot send: %v", err)
	}
	t.Logf("carol could use IMAP, POP3 and SMTP %v after the edit", time.Since(added).Round(time.Millisecond))
	toTeam := newMessage("alice@example.com", "team@example.com", "Welcome carol", 500)
	if err := submit(h.addr("submission"), h.tls, "alice@example.com", users["alice@example.com"], "alice@example.com", []string{"team@example.com"}, toTeam.Raw); err != nil {
		t.Fatal(err)
	}
	p, err := dialPOP3S(h.addr("pop3s"), h.tls, "carol@example.com", carolPass)
	if err != nil {
		t.Fatal(err)
	}
	if raw, err := p.retr(1); err != nil {
		t.Errorf("the list did not reach carol: %v", err)
	} else if id, err := checkMessage(raw); err != nil || id != toTeam.ID {
		t.Errorf("carol's message 1: %q %v", id, err)
	}
	p.quit()

	// dave leaves: his section goes, and the list no longer names him.
	withoutDave := strings.Replace(withCarol, userSection("dave@example.com", users["dave@example.com"]), "", 1)
	withoutDave = strings.Replace(withoutDave, "team@example.com = bob@example.com, dave@example.com, carol@example.com", "team@example.com = bob@example.com, carol@example.com", 1)
	h.rewriteConfig(withoutDave)
	removed := time.Now()
	for i, c := range daveIMAP {
		select {
		case <-c.Closed():
		case <-time.After(3 * time.Second):
			t.Errorf("dave's IMAP session %d stayed open 3s after he was removed", i)
		}
	}
	if err := readUntilClosed(davePOP, 3*time.Second); err != nil {
		t.Errorf("dave's POP3 session: %v", err)
	}
	t.Logf("dave's sessions ended %v after the edit", time.Since(removed).Round(time.Millisecond))

	if c, err := dialIMAPS(h.addr("imaps"), h.tls, "dave@example.com", users["dave@example.com"], nil); err == nil {
		c.Close()
		t.Error("removed user logged in over IMAP")
	}
	if p, err := dialPOP3S(h.addr("pop3s"), h.tls, "dave@example.com", users["dave@example.com"]); err == nil {
		p.Close()
		t.Error("removed user logged in over POP3")
	}
	m = newMessage("dave@example.com", "alice@example.com", "Still here?", 200)
	err = submit(h.addr("submission"), h.tls, "dave@example.com", users["dave@example.com"], "dave@example.com", []string{"alice@example.com"}, m.Raw)
	if smtpCode(err) != 535 {
		t.Errorf("removed user's SMTP AUTH: %v, want 535", err)
	}
	err = sendMX(h.addr("smtp"), h.tls, "someone@example.net", []string{"dave@example.com"}, m.Raw)
	if smtpCode(err) != 550 {
		t.Errorf("mail to the removed user: %v, want 550", err)
	}
}

// readUntilClosed reads from a POP3 session until the server closes it
// (a final -ERR line before the close is fine).
func readUntilClosed(p *pop3Client, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	p.conn.SetReadDeadline(deadline)
	for range 100 {
		line, err := p.r.ReadString('\n')
		var ne net.Error
		switch {
		case errors.As(err, &ne) && ne.Timeout():
			return fmt.Errorf("still open %v after the user was removed", limit)
		case err != nil:
			return nil // closed (EOF or reset)
		case strings.HasPrefix(line, "+OK"):
			return fmt.Errorf("server sent %q unasked", strings.TrimSpace(line))
		}
	}
	return fmt.Errorf("server kept talking instead of closing")
}
