package integration

import (
	"crypto/tls"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Crash safety: SMTP load against a real `mailsuite serve` process that
// is SIGKILLed at random moments and restarted on the same data dir. Every
// message that got its final 250 must be stored exactly once per
// recipient and whole; nothing half-written may be visible over IMAP or
// POP3; UIDVALIDITY and the UIDs already seen never change; the store
// passes the independent consistency check.
func TestCrashSafety(t *testing.T) {
	const rounds = 4
	dir := t.TempDir()
	ini := filepath.Join(dir, "mail.ini")
	sink := startSink(t)
	relayTo := "[relay]\nsmarthost = " + sink.addr + "\nsmarthost_tls = none\n"
	if err := os.WriteFile(ini, []byte(configWith(officeAliases+relayTo, "alice@example.com", "bob@example.com", "dave@example.com")), 0o600); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(dir, "data")
	cs := &crashState{t: t, dataDir: dataDir, sent: map[string]*sentMessage{},
		uidv: map[string]uint32{}, uids: map[string]map[string]uint32{}}
	// Local recipients come in over port 25; mail for another domain is
	// submitted by alice and goes through the relay queue to the sink.
	recipients := [][]string{{"alice@example.com"}, {"bob@example.com"}, {"team@example.com"}, {"alice@example.com", "bob@example.com"}, {remoteRcpt}}
	owners := map[string][]string{"team@example.com": {"bob@example.com", "dave@example.com"}, remoteRcpt: {remoteRcpt}}

	for round := 0; round <= rounds; round++ {
		c := startChild(t, ini)
		tc := clientTLS(t, dataDir)
		if round == 0 {
			// One message each so that every INBOX (and its UIDVALIDITY)
			// exists before the first crash.
			for _, u := range []string{"alice@example.com", "bob@example.com", "dave@example.com"} {
				m := newMessage("seed@example.net", u, "seed", 300)
				if err := sendMX(c.addrs["smtp"], tc, "seed@example.net", []string{u}, m.Raw); err != nil {
					t.Fatalf("seed: %v", err)
				}
				cs.record(m.ID, []string{u}, true)
			}
		}
		cs.verify(c, tc, round)
		if round == rounds {
			cs.verifyRelayed(sink, ini)
			if err := c.term(10 * time.Second); err != nil {
				t.Errorf("final SIGTERM: %v", err)
			}
			break
		}
		// Load: 6 clients send until the process dies.
		var stop atomic.Bool
		var wg sync.WaitGroup
		for w := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 200 && !stop.Load(); i++ {
					to := recipients[(w+i)%len(recipients)]
					var rcptOwners []string
					for _, r := range to {
						if o, ok := owners[r]; ok {
							rcptOwners = append(rcptOwners, o...)
						} else {
							rcptOwners = append(rcptOwners, r)
						}
					}
					subject := fmt.Sprintf("round %d client %d msg %d", round, w, i)
					var m testMessage
					var err error
					if to[0] == remoteRcpt {
						m = newMessage("alice@example.com", to[0], subject, 500+rand.IntN(50_000))
						cs.record(m.ID, rcptOwners, false)
						err = submit(c.addrs["submission"], tc, "alice@example.com", users["alice@example.com"], "alice@example.com", to, m.Raw)
					} else {
						m = newMessage("load@example.net", to[0], subject, 500+rand.IntN(150_000))
						cs.record(m.ID, rcptOwners, false)
						var stls *tls.Config
						if i%2 == 0 {
							stls = tc
						}
						err = sendMX(c.addrs["smtp"], stls, "load@example.net", to, m.Raw)
					}
					if err == nil {
						cs.record(m.ID, rcptOwners, true)
					} else if smtpCode(err) != 0 && !stop.Load() {
						cs.errs.add("round %d: SMTP refused a message while running: %v", round, err)
					} else if smtpCode(err) == 0 {
						time.Sleep(10 * time.Millisecond) // the server is gone
					}
				}
			}()
		}
		time.Sleep(time.Duration(150+rand.IntN(600)) * time.Millisecond)
		c.kill()
		stop.Store(true)
		wg.Wait()
		t.Logf("round %d: killed pid %d; %d messages acknowledged so far", round, c.cmd.Process.Pid, cs.acked())
	}
	cs.errs.report(t)
	for _, u := range []string{"alice@example.com", "bob@example.com", "dave@example.com"} {
		local, domain := splitAddr(u)
		fc, err := checkFolder(filepath.Join(dataDir, "mail", domain, local))
		if err != nil {
			t.Errorf("store check: %v", err)
			continue
		}
		if fc.UIDValidity != cs.uidv[u] {
			t.Errorf("%s: dovecot-uidlist UIDVALIDITY %d, IMAP said %d", u, fc.UIDValidity, cs.uidv[u])
		}
		for _, m := range fc.Messages {
			if cs.uids[u][m.ID] != m.UID {
				t.Errorf("%s: %s has UID %d on disk, %d over IMAP", u, m.ID, m.UID, cs.uids[u][m.ID])
			}
		}
		if len(fc.Messages) != len(cs.uids[u]) {
			t.Errorf("%s: %d messages on disk, %d over IMAP", u, len(fc.Messages), len(cs.uids[u]))
		}
	}
	// Dovecot reads the crashed-into tree with the same UIDs.
	if !haveDovecot(t) {
		t.Log("Dovecot not installed: skipping its cross-check of the tree")
		return
	}
	conf, tree := dovecotCopy(t, filepath.Join(dataDir, "mail"))
	for _, u := range []string{"alice@example.com", "bob@example.com", "dave@example.com"} {
		uidv, view := dovecotView(t, conf, tree, u, "INBOX")
		if uidv != cs.uidv[u] {
			t.Errorf("%s: Dovecot sees UIDVALIDITY %d, mailsuite %d", u, uidv, cs.uidv[u])
		}
		if len(view) != len(cs.uids[u]) {
			t.Errorf("%s: Dovecot sees %d messages, mailsuite %d", u, len(view), len(cs.uids[u]))
		}
		for id, uid := range cs.uids[u] {
			if !strings.HasPrefix(view[id], fmt.Sprintf("UID %d FLAGS", uid)) {
				t.Errorf("%s: %s is UID %d in mailsuite, %q in Dovecot", u, id, uid, view[id])
			}
		}
	}
}

// remoteRcpt is a recipient in another domain, reached through the relay.
const remoteRcpt = "friend@elsewhere.example.org"

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

type sentMessage struct {
	owners []string
	acked  bool
}

type crashState struct {
	t       *testing.T
	dataDir string
	mu      sync.Mutex
	sent    map[string]*sentMessage
	uidv    map[string]uint32            // user → INBOX UIDVALIDITY
	uids    map[string]map[string]uint32 // user → Message-ID → UID
	errs    errList
}

func (cs *crashState) record(id string, owners []string, acked bool) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.sent[id] = &sentMessage{owners: owners, acked: acked}
}

func (cs *crashState) acked() int {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	n := 0
	for _, m := range cs.sent {
		if m.acked {
			n++
		}
	}
	return n
}

// verify reads every INBOX over IMAP and POP3 after a (re)start.
func (cs *crashState) verify(c *child, tc *tls.Config, round int) {
	t := cs.t
	t.Helper()
	for _, u := range []string{"alice@example.com", "bob@example.com", "dave@example.com"} {
		ic, err := dialIMAPS(c.addrs["imaps"], tc, u, users[u], nil)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		uidv, msgs, err := fetchAll(ic, "INBOX", true)
		ic.Logout().Wait()
		ic.Close()
		if err != nil {
			t.Fatalf("round %d: %s: %v", round, u, err)
		}
		if old, ok := cs.uidv[u]; ok && old != uidv {
			t.Errorf("round %d: %s UIDVALIDITY changed from %d to %d", round, u, old, uidv)
		}
		cs.uidv[u] = uidv
		count := map[string]int{}
		now := map[string]uint32{}
		for _, m := range msgs {
			id, err := checkMessage(m.Body)
			if err != nil {
				t.Errorf("round %d: %s: IMAP shows a damaged message (UID %d): %v", round, u, m.UID, err)
				continue
			}
			count[id]++
			now[id] = uint32(m.UID)
			if old, ok := cs.uids[u][id]; ok && old != uint32(m.UID) {
				t.Errorf("round %d: %s: %s changed UID from %d to %d", round, u, id, old, m.UID)
			}
		}
		cs.mu.Lock()
		for id, n := range count {
			s := cs.sent[id]
			switch {
			case s == nil || !contains(s.owners, u):
				t.Errorf("round %d: %s holds %s, never sent to them", round, u, id)
			case n > 1:
				t.Errorf("round %d: %s holds %s %d times", round, u, id, n)
			}
		}
		for id, s := range cs.sent {
			if s.acked && contains(s.owners, u) && count[id] == 0 {
				t.Errorf("round %d: %s: acknowledged message %s is lost", round, u, id)
			}
		}
		cs.mu.Unlock()
		cs.uids[u] = now

		// POP3 sees the same messages, whole, under the same UIDs.
		p, err := dialPOP3S(c.addrs["pop3s"], tc, u, users[u])
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		list, err := p.uidl()
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != len(msgs) {
			t.Errorf("round %d: %s: POP3 lists %d messages, IMAP %d", round, u, len(list), len(msgs))
		}
		for n, uidl := range list {
			raw, err := p.retr(n)
			if err != nil {
				t.Fatalf("round %d: %s RETR %d: %v", round, u, n, err)
			}
			id, err := checkMessage(raw)
			if err != nil {
				t.Errorf("round %d: %s: POP3 shows a damaged message: %v", round, u, err)
				continue
			}
			if want := fmt.Sprintf("%08x%08x", now[id], uidv); uidl != want {
				t.Errorf("round %d: %s: %s has UIDL %s over POP3, IMAP UID says %s", round, u, id, uidl, want)
			}
		}
		p.quit()
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func splitAddr(a string) (local, domain string) {
	for i := len(a) - 1; i >= 0; i-- {
		if a[i] == '@' {
			return a[:i], a[i+1:]
		}
	}
	return a, ""
}
