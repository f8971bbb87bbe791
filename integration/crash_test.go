package integration

import (
	"crypto/tls"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// Crash safety: SMTP load (with an IMAP client filing, flagging and saving
// drafts, and a POP3 phone deleting after download) against a real
// `mailsuite serve` process that is SIGKILLed at random moments and
// restarted on the same data dir. Every message that got its final 250 (or
// APPEND OK) must be stored and whole, once per folder, and every POP3
// deletion answered +OK must stay done; nothing half-written may be
// visible over IMAP or POP3; UIDVALIDITY and the UIDs already seen never
// change; the tree passes the independent check and Dovecot reads it with
// the same UIDs; acknowledged mail for another domain leaves through the
// relay.
func TestCrashSafety(t *testing.T) {
	const rounds = 4
	dir := t.TempDir()
	ini := filepath.Join(dir, "mail.ini")
	sink := startSink(t)
	relayTo := "[relay]\nsmarthost = " + sink.addr + "\nsmarthost_tls = none\n"
	if err := os.WriteFile(ini, []byte(configWith(officeAliases+relayTo, crashUsers...)), 0o600); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(dir, "data")
	cs := newCrashState(t, ini, dataDir)

	for round := 0; round <= rounds; round++ {
		c := startChild(t, ini)
		tc := clientTLS(t, dataDir)
		if round == 0 {
			// One message each so that every INBOX (and its UIDVALIDITY)
			// exists before the first crash.
			for _, u := range crashUsers {
				m := newMessage("seed@example.net", u, "seed", 300)
				if err := sendMX(c.addrs["smtp"], tc, "seed@example.net", []string{u}, m.Raw); err != nil {
					t.Fatalf("seed: %v", err)
				}
				cs.record(m.ID, []string{u}, true)
			}
		}
		cs.openAfterRestart(c, tc, round)
		cs.verify(c, tc, round)
		if round == rounds {
			cs.verifyRelayed(sink, ini)
			if err := c.term(10 * time.Second); err != nil {
				t.Errorf("final SIGTERM: %v", err)
			}
			break
		}
		var dying, stop atomic.Bool
		var wg sync.WaitGroup
		for w := range 6 {
			wg.Add(1)
			go func() { defer wg.Done(); cs.sendLoad(c, tc, round, w, &dying, &stop) }()
		}
		wg.Add(1)
		go func() { defer wg.Done(); cs.fileMail(c, tc, round, &dying, &stop) }()
		wg.Add(1)
		go func() { defer wg.Done(); cs.popDelete(c, tc, round, &dying, &stop) }()
		time.Sleep(time.Duration(150+rand.IntN(600)) * time.Millisecond)
		dying.Store(true)
		c.kill()
		stop.Store(true)
		wg.Wait()
		t.Logf("round %d: killed pid %d; %d messages acknowledged, %d IMAP STORE/MOVE done so far", round, c.cmd.Process.Pid, cs.acked(), cs.filed.Load())
	}
	cs.errs.report(t)
	confirmed := 0
	for _, ok := range cs.deleted {
		if ok {
			confirmed++
		}
	}
	t.Logf("POP3 deletions confirmed by +OK at QUIT: %d", confirmed)
	cs.checkTree()
}

// Local recipients come in over port 25; mail for another domain is
// submitted by alice and goes through the relay queue to the sink.
var (
	crashRecipients = [][]string{{"alice@example.com"}, {"bob@example.com"}, {"team@example.com"}, {"alice@example.com", "bob@example.com"}, {remoteRcpt}}
	crashOwners     = map[string][]string{"team@example.com": {"bob@example.com", "dave@example.com"}, remoteRcpt: {remoteRcpt}}
)

// remoteRcpt is a recipient in another domain, reached through the relay.
const remoteRcpt = "friend@elsewhere.example.org"

// sendLoad is one SMTP client sending until the server dies (bounded).
func (cs *crashState) sendLoad(c *child, tc *tls.Config, round, w int, dying, stop *atomic.Bool) {
	for i := 0; i < 200 && !stop.Load(); i++ {
		to := crashRecipients[(w+i)%len(crashRecipients)]
		var owners []string
		for _, r := range to {
			if o, ok := crashOwners[r]; ok {
				owners = append(owners, o...)
			} else {
				owners = append(owners, r)
			}
		}
		subject := fmt.Sprintf("round %d client %d msg %d", round, w, i)
		var m testMessage
		var err error
		if to[0] == remoteRcpt {
			m = newMessage("alice@example.com", to[0], subject, 500+rand.IntN(50_000))
			cs.record(m.ID, owners, false)
			err = submit(c.addrs["submission"], tc, "alice@example.com", users["alice@example.com"], "alice@example.com", to, m.Raw)
		} else {
			m = newMessage("load@example.net", to[0], subject, 500+rand.IntN(150_000))
			cs.record(m.ID, owners, false)
			var stls *tls.Config
			if i%2 == 0 {
				stls = tc
			}
			err = sendMX(c.addrs["smtp"], stls, "load@example.net", to, m.Raw)
		}
		switch {
		case err == nil:
			cs.record(m.ID, owners, true)
		case !dying.Load():
			cs.errs.add("round %d: SMTP failed while the server was up: %v", round, err)
		default:
			time.Sleep(10 * time.Millisecond) // the server is gone
		}
	}
}

// fileMail is bob's desktop: it flags messages, moves some to Archive and
// saves drafts while the server may die under it.
func (cs *crashState) fileMail(c *child, tc *tls.Config, round int, dying, stop *atomic.Bool) {
	ic, err := dialIMAPS(c.addrs["imaps"], tc, "bob@example.com", users["bob@example.com"], nil)
	if err != nil {
		if !dying.Load() {
			cs.errs.add("round %d: IMAP: %v", round, err)
		}
		return
	}
	defer ic.Close()
	for i := 0; i < 200 && !stop.Load(); i++ {
		_, msgs, err := fetchAll(ic, "INBOX", false)
		if err == nil && len(msgs) > 0 {
			pick := msgs[rand.IntN(len(msgs))].UID
			if i%2 == 0 {
				_, err = ic.Move(imap.UIDSetNum(pick), "Archive").Wait()
			} else {
				flag := []imap.Flag{imap.FlagFlagged, imap.FlagSeen, imap.FlagAnswered}[i%3]
				_, err = ic.Store(imap.UIDSetNum(pick), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{flag}}, nil).Collect()
			}
		}
		if err == nil && i%3 == 0 {
			err = cs.saveDraft(ic, round, i)
		}
		if err != nil {
			if !dying.Load() {
				cs.errs.add("round %d: IMAP: %v", round, err)
			}
			return
		}
		if len(msgs) > 0 {
			cs.filed.Add(1)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// popDelete is alice's phone set to delete after download: RETR, DELE,
// QUIT. A +OK to QUIT means the deletion is durable (RFC 1939 §6).
func (cs *crashState) popDelete(c *child, tc *tls.Config, round int, dying, stop *atomic.Bool) {
	const u = "alice@example.com"
	for i := 0; i < 100 && !stop.Load(); i++ {
		if err := cs.popDeleteOne(c, tc, u); err != nil {
			if !dying.Load() {
				cs.errs.add("round %d: POP3: %v", round, err)
			}
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// popDeleteOne deletes the newest message of user's maildrop. Once QUIT is
// sent the message may be gone; once QUIT is answered +OK it must be.
func (cs *crashState) popDeleteOne(c *child, tc *tls.Config, user string) error {
	p, err := dialPOP3S(c.addrs["pop3s"], tc, user, users[user])
	if err != nil {
		return err
	}
	defer p.Close()
	list, err := p.uidl()
	if err != nil || len(list) == 0 {
		return err
	}
	raw, err := p.retr(len(list))
	if err != nil {
		return err
	}
	id, err := checkMessage(raw)
	if err != nil {
		return err
	}
	if _, err := p.cmd(fmt.Sprintf("DELE %d", len(list))); err != nil {
		return err
	}
	key := user + " " + id
	cs.mu.Lock()
	cs.deleted[key] = false // QUIT sent: may be gone
	cs.mu.Unlock()
	if err := p.quit(); err != nil {
		return err
	}
	cs.mu.Lock()
	cs.deleted[key] = true // +OK: must be gone
	cs.mu.Unlock()
	return nil
}

// saveDraft APPENDs a draft to bob's Drafts; an OK means it is stored.
func (cs *crashState) saveDraft(ic *imapclient.Client, round, i int) error {
	m := newMessage("bob@example.com", "alice@example.com", fmt.Sprintf("draft %d/%d", round, i), 500+rand.IntN(60_000))
	owners := []string{"bob@example.com"}
	cs.record(m.ID, owners, false)
	cmd := ic.Append("Drafts", int64(len(m.Raw)), &imap.AppendOptions{Flags: []imap.Flag{imap.FlagDraft}})
	if _, err := cmd.Write(m.Raw); err != nil {
		cmd.Close()
		return fmt.Errorf("APPEND: %w", err)
	}
	if err := cmd.Close(); err != nil {
		return fmt.Errorf("APPEND: %w", err)
	}
	if _, err := cmd.Wait(); err != nil {
		return fmt.Errorf("APPEND: %w", err)
	}
	cs.record(m.ID, owners, true)
	return nil
}

// verifyRelayed: every acknowledged message for another domain reaches the
// sink whole, at least once (a crash between the remote 250 and the queue
// noting it may repeat a delivery, as with every MTA), once an admin
// flushes the queue after the last restart.
func (cs *crashState) verifyRelayed(sink *smtpSink, ini string) {
	t := cs.t
	t.Helper()
	out, err := exec.Command(mailsuiteBinary(t), "queue", "flush", "-config", ini).CombinedOutput()
	if err != nil {
		t.Errorf("mailsuite queue flush: %v\n%s", err, out)
	}
	cs.mu.Lock()
	var want []string
	for id, s := range cs.sent {
		if s.acked && contains(s.owners, remoteRcpt) {
			want = append(want, id)
		}
	}
	cs.mu.Unlock()
	deadline := time.Now().Add(15 * time.Second)
	for _, id := range want {
		for sink.count(id) == 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if sink.count(id) == 0 {
			t.Errorf("acknowledged message %s for another domain never reached it", id)
		}
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	for _, d := range sink.damaged {
		t.Errorf("relay delivered a damaged message: %s", d)
	}
	dups := 0
	for _, n := range sink.got {
		dups += n - 1
	}
	t.Logf("relay: %d acknowledged remote messages delivered, %d repeated deliveries", len(want), dups)
}
