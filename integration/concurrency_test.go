package integration

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailsuite/mailsuite"
	"github.com/mailsuite/mailsuite/mailstore"
)

// Many clients at once, for a bounded time: 50 SMTP clients (half MX, half
// submission), 20 IMAP sessions (10 IDLE on INBOX, 10 doing FETCH, STORE
// and MOVE by UID), 10 POP3 sessions reading with leave-on-server. Then
// every accepted message is in exactly one folder of each recipient,
// whole; UIDs are unique and in sequence order; a message keeps its UID
// and UIDL while it stays in INBOX; no session saw an error it should not.
func TestManyClientsAtOnce(t *testing.T) {
	const (
		nUsers      = 10
		smtpClients = 50
		perClient   = 4
	)
	var ccUsers []string
	var cfg strings.Builder
	cfg.WriteString(baseConfig)
	for i := range nUsers {
		u := fmt.Sprintf("user%d@example.com", i)
		ccUsers = append(ccUsers, u)
		cfg.WriteString(userSection(u, "pw-"+u))
	}
	h := startSuite(t, cfg.String(), mailsuite.Options{})
	cc := &concurrencyState{accepted: map[string]string{}, uidOf: map[string]imap.UID{}, uidlOf: map[string]string{}}

	// IMAP sessions open first so that IDLE sees the deliveries.
	var idlers []*idleSession
	for _, u := range ccUsers {
		s, err := startIdle(h.addr("imaps"), h.tls, u, "pw-"+u)
		if err != nil {
			t.Fatal(err)
		}
		idlers = append(idlers, s)
	}
	var smtpDone atomic.Bool
	var wg sync.WaitGroup
	for i, u := range ccUsers {
		wg.Add(2)
		go func() { defer wg.Done(); cc.imapWorker(h, u, "pw-"+u, &smtpDone) }()
		go func() { defer wg.Done(); cc.pop3Reader(h, u, "pw-"+u, &smtpDone, i) }()
	}
	var sendWG sync.WaitGroup
	for c := range smtpClients {
		sendWG.Add(1)
		go func() {
			defer sendWG.Done()
			for i := range perClient {
				to := ccUsers[(c*perClient+i)%nUsers]
				var err error
				var m testMessage
				if c%2 == 0 {
					m = newMessage("sender@example.net", to, fmt.Sprintf("mx %d/%d", c, i), 500+rand.IntN(20_000))
					err = sendMX(h.addr("smtp"), h.tls, "sender@example.net", []string{to}, m.Raw)
				} else {
					from := ccUsers[c%nUsers]
					m = newMessage(from, to, fmt.Sprintf("sub %d/%d", c, i), 500+rand.IntN(20_000))
					err = submit(h.addr("submission"), h.tls, from, "pw-"+from, from, []string{to}, m.Raw)
				}
				if err != nil {
					cc.errs.add("SMTP client %d: %v", c, err)
					continue
				}
				cc.mu.Lock()
				cc.accepted[m.ID] = to
				cc.mu.Unlock()
			}
		}()
	}
	sendWG.Wait()
	smtpDone.Store(true)
	wg.Wait()
	for i, s := range idlers {
		if err := s.stop(); err != nil {
			cc.errs.add("IDLE session of %s: %v", ccUsers[i], err)
		}
	}
	cc.errs.report(t)
	if len(cc.accepted) != smtpClients*perClient {
		t.Errorf("%d of %d messages accepted", len(cc.accepted), smtpClients*perClient)
	}
	t.Logf("accepted %d messages; %d IMAP worker ops; %d POP3 sessions", len(cc.accepted), cc.imapOps.Load(), cc.popSessions.Load())
	for _, u := range ccUsers {
		cc.checkUser(t, h, u, "pw-"+u)
	}
	r, err := h.s.Store().Check(mailstore.CheckOptions{})
	requireStoreCheck(t, "after the load", r, err)
	checkStoreCLI(t, "beside the running server", h.iniPath)
}

type concurrencyState struct {
	mu       sync.Mutex
	accepted map[string]string   // Message-ID → recipient
	uidOf    map[string]imap.UID // Message-ID → UID in INBOX (stable while there)
	uidlOf   map[string]string   // Message-ID → POP3 UIDL
	uidv     sync.Map            // user → INBOX UIDVALIDITY
	errs     errList

	imapOps, popSessions atomic.Int64
}

// noteUID records the INBOX UID of a message and complains if it changed.
func (cc *concurrencyState) noteUID(who, id string, uid imap.UID) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if old, ok := cc.uidOf[id]; ok && old != uid {
		cc.errs.add("%s: %s was UID %d, now UID %d in INBOX", who, id, old, uid)
	}
	cc.uidOf[id] = uid
}

// imapWorker loops: fetch INBOX, flag a message, move another to Archive,
// all by UID, until the SMTP load is over (bounded in count too).
func (cc *concurrencyState) imapWorker(h *harness, user, pass string, done *atomic.Bool) {
	c, err := dialIMAPS(h.addr("imaps"), h.tls, user, pass, nil)
	if err != nil {
		cc.errs.add("IMAP worker %s: %v", user, err)
		return
	}
	defer c.Close()
	// Mail only ever leaves INBOX here, so a message this worker has not
	// seen before is new and must have a UID above every UID it has seen
	// (RFC 3501 §2.3.1.1: UIDs are assigned in ascending order).
	seen := map[string]bool{}
	var maxUID imap.UID
	for i := 0; i < 300 && !(done.Load() && i > 3); i++ {
		uidv, msgs, err := fetchAll(c, "INBOX", true)
		if err != nil {
			cc.errs.add("IMAP worker %s: %v", user, err)
			return
		}
		cc.checkUIDV(user, uidv)
		newMax := maxUID
		for _, m := range msgs {
			id, err := checkMessage(m.Body)
			if err != nil {
				cc.errs.add("IMAP worker %s: UID %d: %v", user, m.UID, err)
				continue
			}
			cc.noteUID("IMAP "+user, id, m.UID)
			if !seen[id] && m.UID <= maxUID {
				cc.errs.add("IMAP worker %s: new message %s got UID %d, not above %d seen before", user, id, m.UID, maxUID)
			}
			seen[id] = true
			newMax = max(newMax, m.UID)
		}
		maxUID = newMax
		cc.imapOps.Add(1)
		if len(msgs) == 0 {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		pick := msgs[rand.IntN(len(msgs))]
		flag := []imap.Flag{imap.FlagFlagged, imap.FlagSeen, imap.FlagAnswered, "$Work"}[i%4]
		if _, err := c.Store(imap.UIDSetNum(pick.UID), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{flag}}, nil).Collect(); err != nil {
			cc.errs.add("IMAP worker %s: UID STORE %d: %v", user, pick.UID, err)
		}
		if i%3 == 2 {
			victim := msgs[rand.IntN(len(msgs))]
			if _, err := c.Move(imap.UIDSetNum(victim.UID), "Archive").Wait(); err != nil {
				cc.errs.add("IMAP worker %s: UID MOVE %d: %v", user, victim.UID, err)
			}
		}
	}
	c.Logout().Wait()
}

// pop3Reader logs in again and again, reads every message and checks that
// UIDLs stay put and agree with IMAP's UIDs.
func (cc *concurrencyState) pop3Reader(h *harness, user, pass string, done *atomic.Bool, n int) {
	for i := 0; i < 100 && !(done.Load() && i > 2); i++ {
		p, err := dialPOP3S(h.addr("pop3s"), h.tls, user, pass)
		if err != nil {
			cc.errs.add("POP3 %s: %v", user, err)
			return
		}
		cc.popSessions.Add(1)
		list, err := p.uidl()
		if err != nil {
			cc.errs.add("POP3 %s: %v", user, err)
			p.Close()
			return
		}
		for num, uidl := range list {
			raw, err := p.retr(num)
			if err != nil {
				// The message was moved by IMAP since this session began
				// (RFC 1939 sessions see a snapshot; the store cannot
				// serve what is gone). Anything else is a failure.
				if !strings.Contains(err.Error(), "-ERR no such message") {
					cc.errs.add("POP3 %s RETR %d: %v", user, num, err)
				}
				continue
			}
			id, err := checkMessage(raw)
			if err != nil {
				cc.errs.add("POP3 %s RETR %d: %v", user, num, err)
				continue
			}
			cc.mu.Lock()
			if old, ok := cc.uidlOf[id]; ok && old != uidl {
				cc.errs.add("POP3 %s: %s had UIDL %s, now %s", user, id, old, uidl)
			}
			cc.uidlOf[id] = uidl
			cc.mu.Unlock()
		}
		if err := p.quit(); err != nil {
			cc.errs.add("POP3 %s QUIT: %v", user, err)
		}
		time.Sleep(time.Duration(10+n) * time.Millisecond)
	}
}

func (cc *concurrencyState) checkUIDV(user string, uidv uint32) {
	if old, loaded := cc.uidv.LoadOrStore(user, uidv); loaded && old.(uint32) != uidv {
		cc.errs.add("%s: INBOX UIDVALIDITY changed from %d to %d", user, old, uidv)
	}
}

// checkUser: after the load, every message for user is in exactly one
// folder, whole; UIDs are strictly increasing in sequence order; UIDLs
// match the INBOX UIDs; the maildirs pass the independent check.
func (cc *concurrencyState) checkUser(t *testing.T, h *harness, user, pass string) {
	t.Helper()
	c, err := dialIMAPS(h.addr("imaps"), h.tls, user, pass, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	where := map[string][]string{}
	for _, folder := range []string{"INBOX", "Archive"} {
		uidv, msgs, err := fetchAll(c, folder, true)
		if err != nil {
			t.Fatalf("%s: %v", user, err)
		}
		for _, m := range msgs {
			id, err := checkMessage(m.Body)
			if err != nil {
				t.Errorf("%s %s UID %d: %v", user, folder, m.UID, err)
				continue
			}
			where[id] = append(where[id], folder)
			if folder != "INBOX" {
				continue
			}
			cc.noteUID("final "+user, id, m.UID)
			cc.mu.Lock()
			if uidl, ok := cc.uidlOf[id]; ok && uidl != fmt.Sprintf("%08x%08x", uint32(m.UID), uidv) {
				t.Errorf("%s: %s has UIDL %s over POP3 but UID %d/%d over IMAP", user, id, uidl, m.UID, uidv)
			}
			cc.mu.Unlock()
		}
		local, domain := splitAddr(user)
		dir := h.maildir(local + "@" + domain)
		if folder != "INBOX" {
			dir += "/." + folder
		}
		fc, err := checkFolder(dir)
		if err != nil {
			t.Errorf("store check: %v", err)
		} else if len(fc.Messages) != len(msgs) || fc.UIDValidity != uidv {
			t.Errorf("%s %s: disk has %d messages (UIDVALIDITY %d), IMAP %d (%d)", user, folder, len(fc.Messages), fc.UIDValidity, len(msgs), uidv)
		}
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	for id, to := range cc.accepted {
		if to != user {
			continue
		}
		if len(where[id]) != 1 {
			t.Errorf("%s: accepted message %s is in %v, want exactly one folder", user, id, where[id])
		}
		delete(where, id)
	}
	for id, f := range where {
		t.Errorf("%s: %s in %v was never accepted for this user", user, id, f)
	}
}
