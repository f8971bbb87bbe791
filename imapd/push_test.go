package imapd

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailsuite/mailsuite/mailstore"
)

// updates collects what the server pushes to an imapclient.
type updates struct {
	mu       sync.Mutex
	exists   []uint32
	expunged []uint32
	flags    map[uint32][]imap.Flag
}

func (u *updates) handler() *imapclient.UnilateralDataHandler {
	u.flags = map[uint32][]imap.Flag{}
	return &imapclient.UnilateralDataHandler{
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				u.mu.Lock()
				u.exists = append(u.exists, *d.NumMessages)
				u.mu.Unlock()
			}
		},
		Expunge: func(seq uint32) {
			u.mu.Lock()
			u.expunged = append(u.expunged, seq)
			u.mu.Unlock()
		},
		Fetch: func(m *imapclient.FetchMessageData) {
			buf, err := m.Collect()
			if err != nil {
				return
			}
			u.mu.Lock()
			u.flags[buf.SeqNum] = buf.Flags
			u.mu.Unlock()
		},
	}
}

func (u *updates) wait(t *testing.T, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	ok := waitFor(2*time.Second, func() bool {
		u.mu.Lock()
		defer u.mu.Unlock()
		return cond()
	})
	if !ok {
		u.mu.Lock()
		t.Fatalf("no %s within 2s: exists %v expunged %v flags %v", what, u.exists, u.expunged, u.flags)
	}
	return time.Since(start)
}

// IDLE: a delivery through the store (what SMTP does) shows up as EXISTS,
// a flag change by another session as FETCH, an expunge by another session
// as EXPUNGE, all well under a second.
func TestIdlePush(t *testing.T) {
	e := startServer(t)
	e.deliver(t, testMsg("first", "x"), alice)
	var u updates
	c := e.client(t, alice, alicePW, u.handler())
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	idle, err := c.Idle()
	if err != nil {
		t.Fatal(err)
	}
	e.deliver(t, testMsg("second", "y"), alice)
	d := u.wait(t, "EXISTS 2", func() bool { return slices.Contains(u.exists, 2) })
	t.Logf("delivery -> EXISTS in %v", d)

	other := e.client(t, alice, alicePW, nil)
	if _, err := other.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagFlagged}}, nil).Collect(); err != nil {
		t.Fatal(err)
	}
	d = u.wait(t, "FETCH FLAGS", func() bool { return slices.Contains(u.flags[1], imap.FlagFlagged) })
	t.Logf("flag change -> FETCH in %v", d)

	if _, err := other.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Collect(); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Expunge().Collect(); err != nil {
		t.Fatal(err)
	}
	d = u.wait(t, "EXPUNGE 1", func() bool { return slices.Contains(u.expunged, 1) })
	t.Logf("expunge -> EXPUNGE in %v", d)

	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatal(err)
	}
	// Sequence numbers agree after the expunge: message 1 is "second".
	msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{Envelope: true}).Collect()
	if err != nil || len(msgs) != 1 || msgs[0].Envelope.Subject != "second" {
		t.Fatalf("after push: %+v %v", msgs, err)
	}
}

// An expunge made outside IMAP (what POP3 does at QUIT: the store directly)
// reaches a NOOP-polling client.
func TestNoopSeesStoreExpunge(t *testing.T) {
	e := startServer(t)
	for _, s := range []string{"a", "b", "c"} {
		e.deliver(t, testMsg(s, s), alice)
	}
	var u updates
	c := e.client(t, alice, alicePW, u.handler())
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	h, _ := e.store.User(alice)
	f, _ := h.Folder(mailstore.Inbox)
	msgs, _ := f.Sync()
	if _, err := f.Expunge([]mailstore.UID{msgs[1].UID}); err != nil {
		t.Fatal(err)
	}
	if !waitFor(2*time.Second, func() bool {
		c.Noop().Wait() // not under u.mu: the handler takes it
		u.mu.Lock()
		defer u.mu.Unlock()
		return slices.Contains(u.expunged, 2)
	}) {
		t.Fatalf("no EXPUNGE 2 after NOOP: %v", u.expunged)
	}
	if n := c.Mailbox().NumMessages; n != 2 {
		t.Errorf("client thinks %d messages", n)
	}
}

// During FETCH no EXPUNGE may be sent (RFC 3501 §7.4.1): it is held back
// until a command that allows it.
func TestExpungeHeldDuringFetch(t *testing.T) {
	e := startServer(t)
	for _, s := range []string{"a", "b"} {
		e.deliver(t, testMsg(s, s), alice)
	}
	rc := e.raw(t)
	rc.ok(`LOGIN alice@example.org "` + alicePW + `"`)
	rc.ok("SELECT INBOX")
	h, _ := e.store.User(alice)
	f, _ := h.Folder(mailstore.Inbox)
	msgs, _ := f.Sync()
	f.Expunge([]mailstore.UID{msgs[0].UID})
	time.Sleep(100 * time.Millisecond) // let the store's event arrive
	u := rc.ok("FETCH 1:* (UID)")
	if hasLine(u, "EXPUNGE") {
		t.Fatalf("EXPUNGE during FETCH: %q", u)
	}
	u = rc.ok("NOOP")
	if !hasLine(u, `^\* 1 EXPUNGE$`) {
		t.Fatalf("NOOP after held expunge: %q", u)
	}
}

// Several sessions on one mailbox, each changing and appending, all end
// with the same view.
func TestConcurrentSessions(t *testing.T) {
	e := startServer(t)
	for i := 0; i < 10; i++ {
		e.deliver(t, testMsg("seed", "x"), alice)
	}
	const n = 4
	clients := make([]*imapclient.Client, n)
	for i := range clients {
		clients[i] = e.client(t, alice, alicePW, nil)
		if _, err := clients[i].Select("INBOX", nil).Wait(); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, n*10)
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 5; j++ {
				msg := testMsg("from session", "y")
				cmd := c.Append("INBOX", int64(len(msg)), nil)
				cmd.Write([]byte(msg))
				cmd.Close()
				if _, err := cmd.Wait(); err != nil {
					errs <- err
				}
				kw := imap.Flag("k" + string(rune('a'+i)))
				if _, err := c.Store(imap.SeqSetNum(uint32(j+1)), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{kw}}, nil).Collect(); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i, c := range clients {
		if err := c.Noop().Wait(); err != nil {
			t.Fatal(err)
		}
		msgs, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, Flags: true}).Collect()
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) != 30 || c.Mailbox().NumMessages != 30 {
			t.Fatalf("client %d sees %d messages (%d)", i, len(msgs), c.Mailbox().NumMessages)
		}
		for j := 0; j < 5; j++ {
			for k := 0; k < n; k++ {
				if !slices.Contains(msgs[j].Flags, imap.Flag("k"+string(rune('a'+k)))) {
					t.Errorf("client %d message %d lacks keyword of session %d: %v", i, j+1, k, msgs[j].Flags)
				}
			}
		}
		for j := 1; j < len(msgs); j++ {
			if msgs[j].UID <= msgs[j-1].UID {
				t.Fatalf("client %d: UIDs out of order at %d", i, j)
			}
		}
	}
}

// A removed user's IDLE-ing sessions all end; go-imap then calls Close while
// Session.Idle may still run (run with -race).
func TestRemovedUserIdleSessions(t *testing.T) {
	e := startServer(t)
	var clients []*imapclient.Client
	for i := 0; i < 4; i++ {
		c := e.client(t, alice, alicePW, nil)
		if _, err := c.Select("INBOX", nil).Wait(); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Idle(); err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	// Deliveries keep the IDLE goroutines busy while the sessions close.
	go func() {
		for i := 0; i < 5; i++ {
			d, err := e.store.BeginDelivery()
			if err != nil {
				return
			}
			d.Write([]byte(testMsg("during", "x")))
			d.Commit(t.Context(), []string{alice})
		}
	}()
	cfg := e.cfg
	cfg.Users = cfg.Users[1:]
	if err := e.dir.Update(cfg); err != nil {
		t.Fatal(err)
	}
	for i, c := range clients {
		select {
		case <-c.Closed():
		case <-time.After(3 * time.Second):
			t.Errorf("IDLE session %d stayed open", i)
		}
	}
}

// An IDLE that the client ends with a line other than DONE: go-imap answers
// BAD and reads the next command without waiting for Session.Idle. That
// command must not run until Idle has returned, or the two goroutines share
// the selected view (a data race) and updates written by Idle interleave
// with the command's responses (metaFetch writes past go-imap's lock).
func TestCommandWaitsForAbandonedIdle(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	e := startServer(t, func(o *Options) {
		o.Hooks.OnCommand = func(_, line string) {
			if line == "IDLE" {
				once.Do(func() { close(entered) })
				<-release // Idle is still running, as if writing an update
			}
		}
	})
	e.deliver(t, testMsg("one", "x"), alice)
	rc := e.raw(t)
	rc.ok(`LOGIN alice@example.org "` + alicePW + `"`)
	rc.ok("SELECT INBOX")
	rc.send("I1 IDLE")
	rc.expect(`^\+ `)
	select {
	case <-entered:
	case <-time.After(5 * time.Second):
		close(release)
		t.Fatal("Session.Idle did not start")
	}
	rc.send("NOT-DONE")
	rc.send("F1 FETCH 1 (UID FLAGS)")
	rc.expect(`^I1 BAD `)
	rc.c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	line, err := rc.r.ReadString('\n')
	close(release)
	if err == nil {
		t.Fatalf("FETCH answered while Session.Idle was still running: %q", line)
	}
	rc.expect(`^\* 1 FETCH \(UID 1 FLAGS \(\\Recent\)\)$`)
	rc.expect(`^F1 OK `)
}
