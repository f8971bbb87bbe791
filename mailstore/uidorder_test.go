package mailstore

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// subjectNumbers returns, in UID order, the N of each message's
// "Subject: message N" (see msg).
func subjectNumbers(t *testing.T, f *Folder, msgs []MessageInfo) []int {
	t.Helper()
	out := make([]int, len(msgs))
	for i, m := range msgs {
		r, err := f.Open(m.UID)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = -1
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			if n, ok := strings.CutPrefix(sc.Text(), "Subject: message "); ok {
				fmt.Sscan(n, &out[i])
				break
			}
		}
		r.Close()
	}
	return out
}

// Many deliveries within one second, then one Sync: UIDs follow delivery
// order. Names carry microseconds without zero padding (Dovecot's form),
// so "M99xxx" sorts after "M100xxx" as text; mtimes do not settle it
// either: they tick in 4 ms steps here, whole seconds on some file systems,
// and copies and restores rewrite them, which the test imitates.
func TestUIDsFollowDeliveryOrder(t *testing.T) {
	root := t.TempDir()
	s := openStore(t, root)
	deliver(t, s, msg(0), "order@x.test") // creates the maildir
	// Start shortly before a tenth of a second, where the microseconds
	// grow from five digits to six.
	now := time.Now().Nanosecond()
	time.Sleep(time.Duration((1e9+95e6-now)%1e9) * time.Nanosecond)
	const n = 60
	for i := 1; i < n; i++ {
		deliver(t, s, msg(i), "order@x.test")
	}
	newDir := filepath.Join(root, "x.test", "order", "new")
	same := time.Unix(time.Now().Unix(), 0)
	for _, name := range filesIn(t, newDir) {
		if err := os.Chtimes(filepath.Join(newDir, name), same, same); err != nil {
			t.Fatal(err)
		}
	}
	f := mustFolder(t, mustUser(t, s, "order@x.test"), Inbox)
	msgs := mustSync(t, f)
	if len(msgs) != n {
		t.Fatalf("%d messages, want %d", len(msgs), n)
	}
	for i, got := range subjectNumbers(t, f, msgs) {
		if got != i {
			t.Fatalf("UID %d holds message %d, want %d (keys %s ...)", msgs[i].UID, got, i, msgs[i].Key)
		}
	}
}

// Commit order, not BeginDelivery order, decides: smtpd opens a delivery
// early (at RCPT time) and may commit it long after a later one.
func TestUIDsFollowCommitOrderNotBeginOrder(t *testing.T) {
	s := openStore(t, t.TempDir())
	const n = 60
	ds := make([]*Delivery, n)
	for i := range ds {
		d, err := s.BeginDelivery()
		if err != nil {
			t.Fatal(err)
		}
		ds[i] = d
	}
	f := mustFolder(t, mustUser(t, s, "order@x.test"), Inbox)
	for i := n - 1; i >= 0; i-- { // committed in reverse: message n-1 first
		if _, err := ds[i].Write([]byte(msg(i))); err != nil {
			t.Fatal(err)
		}
		if err := ds[i].Commit(t.Context(), []string{"order@x.test"}); err != nil {
			t.Fatal(err)
		}
		if i == n/2 {
			mustSync(t, f) // a Sync in between must not change the answer
		}
	}
	msgs := mustSync(t, f)
	if len(msgs) != n {
		t.Fatalf("%d messages", len(msgs))
	}
	for i, got := range subjectNumbers(t, f, msgs) {
		if want := n - 1 - i; got != want {
			t.Fatalf("UID %d holds message %d, want %d", msgs[i].UID, got, want)
		}
	}
}

// Concurrent writers (each opening its delivery early, as smtpd does) and a
// goroutine syncing every few milliseconds: whenever one Commit returned before
// another began, the first message's UID is lower.
func TestUIDsNeverInvertCommittedOrder(t *testing.T) {
	s := openStore(t, t.TempDir())
	u := mustUser(t, s, "order@x.test")
	const writers, per = 4, 40
	var clock atomic.Int64
	type span struct{ begin, end int64 }
	spans := make([]span, writers*per)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	syncErr := make(chan error, 1)
	go func() {
		defer close(syncErr)
		f, err := u.Folder(Inbox)
		if err != nil {
			syncErr <- err
			return
		}
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := f.Sync(); err != nil {
				syncErr <- err
				return
			}
			time.Sleep(2 * time.Millisecond) // let a few commits gather
		}
	}()
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			next, err := s.BeginDelivery()
			for i := range per {
				if err != nil {
					errs <- err
					return
				}
				id := w*per + i
				d := next
				d.Write([]byte(msg(id)))
				// The next one is opened before this one commits.
				next, err = s.BeginDelivery()
				// Uneven waits: later-opened deliveries overtake.
				time.Sleep(time.Duration(id*7%5) * 400 * time.Microsecond)
				spans[id].begin = clock.Add(1)
				if err := d.Commit(t.Context(), []string{"order@x.test"}); err != nil {
					errs <- err
					return
				}
				spans[id].end = clock.Add(1)
			}
			if err == nil {
				next.Abort()
			}
		}()
	}
	wg.Wait()
	close(stop)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := <-syncErr; err != nil {
		t.Fatal(err)
	}
	f := mustFolder(t, u, Inbox)
	msgs := mustSync(t, f)
	if len(msgs) != writers*per {
		t.Fatalf("%d messages", len(msgs))
	}
	uidOf := make([]UID, len(msgs))
	for i, id := range subjectNumbers(t, f, msgs) {
		uidOf[id] = msgs[i].UID
	}
	for a := range spans {
		for b := range spans {
			if spans[a].end < spans[b].begin && uidOf[a] > uidOf[b] {
				t.Fatalf("message %d committed before %d began committing, but has UID %d > %d", a, b, uidOf[a], uidOf[b])
			}
		}
	}
}

// Files other programs drop into new/ get UIDs by the time in their names
// (seconds, then microseconds read as a number), then their mtime, for
// the name forms in use: Dovecot's "<sec>.M<usec>P<pid>.<host>", the old
// "<sec>.<pid>.<host>", "<sec>.R<random>.<host>" and names with no time.
func TestPickedUpNamesSortByTime(t *testing.T) {
	root := t.TempDir()
	s := openStore(t, root)
	u := mustUser(t, s, "drop@x.test")
	f := mustFolder(t, u, Inbox)
	mustSync(t, f)
	base := int64(1700000000)
	at := func(sec int64, ms int) time.Time { return time.Unix(sec, int64(ms)*int64(time.Millisecond)) }
	// In the expected UID order, each with the mtime its writer left.
	files := []struct {
		name  string
		mtime time.Time
	}{
		{fmt.Sprintf("%d.M9P77.other", base), at(base+5, 0)},
		{fmt.Sprintf("%d.M10P77.other", base), at(base+5, 0)},
		{fmt.Sprintf("%d.M99999P77.other", base), at(base+5, 0)},
		{fmt.Sprintf("%d.M123456P77.other", base), at(base+5, 0)},
		{fmt.Sprintf("%d.4243.oldhost", base+1), at(base+1, 200)},
		{fmt.Sprintf("%d.M300000P1.other", base+1), at(base+1, 900)},
		{fmt.Sprintf("%d.4242.oldhost", base+1), at(base+1, 500)},
		{fmt.Sprintf("%d.M1P1Q5.mailsuite,S=30", base+2), at(base+2, 0)},
		{fmt.Sprintf("%d.R4f3a9cP2.host", base+10), at(base+10, 0)},
		{"no-time-in-this-name", at(base+20, 0)},
		{fmt.Sprintf("%d.M5P1V803I1234.other", base+30), at(base+30, 0)},
	}
	for i := len(files) - 1; i >= 0; i-- { // written in reverse order
		p := filepath.Join(root, "x.test", "drop", "new", files[i].name)
		if err := os.WriteFile(p, []byte(msg(i)), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, files[i].mtime, files[i].mtime); err != nil {
			t.Fatal(err)
		}
	}
	msgs := mustSync(t, f)
	if len(msgs) != len(files) {
		t.Fatalf("%d messages", len(msgs))
	}
	// The old-form names in second base+1 have no microseconds: their
	// mtimes (not their pids) place them around the Dovecot name of that
	// second.
	for i, got := range subjectNumbers(t, f, msgs) {
		if got != i {
			t.Fatalf("UID %d is %s, want %s", msgs[i].UID, files[got].name, files[i].name)
		}
	}
}
