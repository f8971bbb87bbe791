package mailstore

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCacheSurvivesReopenAndIgnoresTornTail(t *testing.T) {
	root := t.TempDir()
	s := openStore(t, root)
	for i := 0; i < 3; i++ {
		deliver(t, s, msg(i), "c@x.test")
	}
	f := mustFolder(t, mustUser(t, s, "c@x.test"), Inbox)
	msgs := mustSync(t, f)
	f.SetCached(msgs[0].UID, "envelope", []byte("env-1"))
	f.SetCached(msgs[1].UID, "envelope", []byte("env-2"))
	f.SetCached(msgs[1].UID, "envelope", []byte("env-2b")) // overwrite
	f.SetCached(msgs[2].UID, "bodystructure", []byte("bs-3"))
	f.SetCached(999, "envelope", []byte("nobody")) // unknown UID: ignored
	if v, ok := f.Cached(msgs[1].UID, "envelope"); !ok || string(v) != "env-2b" {
		t.Fatalf("cached %q %v", v, ok)
	}
	s.Close()
	// Tear the last record in half, as a crash during append would.
	p := filepath.Join(root, "x.test", "c", cacheFile)
	data, _ := os.ReadFile(p)
	os.WriteFile(p, data[:len(data)-3], 0o600)

	s2 := openStore(t, root)
	f2 := mustFolder(t, mustUser(t, s2, "c@x.test"), Inbox)
	mustSync(t, f2)
	if v, ok := f2.Cached(msgs[0].UID, "envelope"); !ok || string(v) != "env-1" {
		t.Fatalf("after reopen: %q %v", v, ok)
	}
	if v, ok := f2.Cached(msgs[1].UID, "envelope"); !ok || string(v) != "env-2b" {
		t.Fatalf("after reopen (overwritten key): %q %v", v, ok)
	}
	if _, ok := f2.Cached(msgs[2].UID, "bodystructure"); ok {
		t.Fatal("torn record was used")
	}
	if _, ok := f2.Cached(999, "envelope"); ok {
		t.Fatal("unknown UID cached")
	}
	// Expunged messages drop out of the cache.
	f2.Expunge([]UID{msgs[0].UID})
	if _, ok := f2.Cached(msgs[0].UID, "envelope"); ok {
		t.Fatal("cache kept an expunged message")
	}
	// A corrupt file is dropped, not trusted.
	os.WriteFile(p, []byte("garbage\x00\x01"), 0o600)
	s3 := openStore(t, root)
	f3 := mustFolder(t, mustUser(t, s3, "c@x.test"), Inbox)
	if _, ok := f3.Cached(msgs[1].UID, "envelope"); ok {
		t.Fatal("corrupt cache trusted")
	}
	f3.SetCached(msgs[1].UID, "k", []byte("v"))
	if v, ok := f3.Cached(msgs[1].UID, "k"); !ok || !bytes.Equal(v, []byte("v")) {
		t.Fatal("cache not rebuilt")
	}
}

func nextEvent(t *testing.T, ch <-chan Event) Event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("event channel closed")
		}
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5s")
	}
	return Event{}
}

// waitEvent skips events until one matches.
func waitEvent(t *testing.T, ch <-chan Event, match func(Event) bool) Event {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatal("event channel closed")
			}
			if match(ev) {
				return ev
			}
		case <-deadline:
			t.Fatal("no matching event within 5s")
		}
	}
}

func TestWatchEvents(t *testing.T) {
	root := t.TempDir()
	s := openStore(t, root)
	u := mustUser(t, s, "w@x.test")
	events, cancel := u.Watch()
	defer cancel()
	inbox := mustFolder(t, u, Inbox)
	mustSync(t, inbox)

	deliver(t, s, msg(1), "w@x.test")
	ev := nextEvent(t, events)
	if ev.Kind != EventAdded || ev.Folder != Inbox || ev.User != "w@x.test" {
		t.Fatalf("delivery event %+v", ev)
	}
	// Whoever syncs first (we or the poller) reports the UID; queued
	// events of one kind coalesce, so it may have merged into the one above.
	msgs := mustSync(t, inbox)
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}

	inbox.SetFlags([]UID{msgs[0].UID}, FlagsAdd, []Flag{FlagSeen})
	ev = waitEvent(t, events, func(e Event) bool { return e.Kind == EventFlags })
	if !slices.Equal(ev.UIDs, []UID{msgs[0].UID}) {
		t.Fatalf("flags event %+v", ev)
	}
	sent := mustFolder(t, u, "Sent")
	_, dst, err := inbox.MoveTo([]UID{msgs[0].UID}, sent)
	if err != nil {
		t.Fatal(err)
	}
	waitEvent(t, events, func(e Event) bool { return e.Kind == EventAdded && e.Folder == "Sent" && slices.Equal(e.UIDs, dst) })
	waitEvent(t, events, func(e Event) bool { return e.Kind == EventExpunge && e.Folder == Inbox })

	// Another process (a second Store) changes the tree: the poller notices.
	other := openStore(t, root)
	deliver(t, other, msg(2), "w@x.test")
	ev = waitEvent(t, events, func(e Event) bool { return e.Kind == EventAdded && e.Folder == Inbox && len(e.UIDs) > 0 })
	of := mustFolder(t, mustUser(t, other, "w@x.test"), Inbox)
	om := mustSync(t, of)
	of.SetFlags([]UID{om[0].UID}, FlagsAdd, []Flag{FlagFlagged})
	waitEvent(t, events, func(e Event) bool { return e.Kind == EventFlags && e.Folder == Inbox })
	of.Expunge([]UID{om[0].UID})
	waitEvent(t, events, func(e Event) bool { return e.Kind == EventExpunge && e.Folder == Inbox })

	cancel()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-events:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("channel not closed after cancel")
		}
	}
}

func TestWatchDoesNotBlockStore(t *testing.T) {
	s := openStore(t, t.TempDir())
	u := mustUser(t, s, "slow@x.test")
	events, cancel := u.Watch() // never read until the end
	defer cancel()
	f := mustFolder(t, u, "Drafts")
	for i := 0; i < 300; i++ {
		if _, err := f.Append(strings.NewReader(msg(i)), nil, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	// Coalesced: a handful of events cover all 300 UIDs (or say "sync").
	seen := map[UID]bool{}
	for n := 1; ; n++ {
		ev := nextEvent(t, events)
		if ev.Kind != EventAdded || ev.Folder != "Drafts" {
			t.Fatalf("%+v", ev)
		}
		if len(ev.UIDs) == 0 {
			break
		}
		for _, u := range ev.UIDs {
			seen[u] = true
		}
		if len(seen) == 300 {
			break
		}
		if n >= 3 {
			t.Fatalf("%d events for 300 appends, not coalesced", n)
		}
	}
}

func TestMaildropLock(t *testing.T) {
	root := t.TempDir()
	s := openStore(t, root)
	u := mustUser(t, s, "p@x.test")
	release, err := u.LockMaildrop()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mustUser(t, s, "P@x.test").LockMaildrop(); !errors.Is(err, ErrInUse) {
		t.Fatalf("second lock in process: %v", err)
	}
	other := openStore(t, root) // another process's view: flock conflicts
	if _, err := mustUser(t, other, "p@x.test").LockMaildrop(); !errors.Is(err, ErrInUse) {
		t.Fatalf("lock from other store: %v", err)
	}
	release()
	release() // idempotent
	r2, err := mustUser(t, other, "p@x.test").LockMaildrop()
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	// A session ending just after the next one asks: the lock waits.
	go func() { time.Sleep(200 * time.Millisecond); r2() }()
	r3, err := mustUser(t, s, "p@x.test").LockMaildrop()
	if err != nil {
		t.Fatalf("lock released 200ms later: %v", err)
	}
	r3()
}

func TestCopyMovePreserveFlags(t *testing.T) {
	s := openStore(t, t.TempDir())
	u := mustUser(t, s, "m@x.test")
	src := mustFolder(t, u, "Drafts")
	date := time.Date(2021, 5, 6, 7, 8, 9, 0, time.UTC)
	var uids []UID
	for i, fl := range [][]Flag{{FlagSeen, "$Important"}, {FlagFlagged}, nil} {
		uid, err := src.Append(strings.NewReader(msg(i)), fl, date)
		if err != nil {
			t.Fatal(err)
		}
		uids = append(uids, uid)
	}
	dest := mustFolder(t, u, "Archive")
	// The destination has another keyword already: letters differ.
	if _, err := dest.Append(strings.NewReader("x\n"), []Flag{"Other"}, date); err != nil {
		t.Fatal(err)
	}
	srcU, dstU, err := src.CopyTo([]UID{uids[0], uids[1], 42}, dest)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(srcU, uids[:2]) || !slices.Equal(dstU, []UID{2, 3}) {
		t.Fatalf("copy UIDs %v -> %v", srcU, dstU)
	}
	dm := mustSync(t, dest)
	if flagsString(dm[1].Flags) != `\Seen $Important` || flagsString(dm[2].Flags) != `\Flagged` || !dm[1].InternalDate.Equal(date) {
		t.Fatalf("copied %+v", dm)
	}
	if len(mustSync(t, src)) != 3 {
		t.Fatal("copy removed source messages")
	}
	srcU, dstU, err = src.MoveTo([]UID{uids[0], uids[2]}, dest)
	if err != nil || len(dstU) != 2 || dstU[0] != 4 {
		t.Fatalf("move: %v %v %v", srcU, dstU, err)
	}
	sm := mustSync(t, src)
	if len(sm) != 1 || sm[0].UID != uids[1] {
		t.Fatalf("after move source has %+v", sm)
	}
	dm = mustSync(t, dest)
	if len(dm) != 5 || flagsString(dm[3].Flags) != `\Seen $Important` {
		t.Fatalf("after move dest %+v", dm)
	}
	// Copy into the same folder works too (IMAP allows it).
	if _, d, err := dest.CopyTo([]UID{dm[0].UID}, dest); err != nil || len(d) != 1 {
		t.Fatalf("self copy %v %v", d, err)
	}
}

func TestKeywordLimitsAndBadFlags(t *testing.T) {
	root := t.TempDir()
	s := openStore(t, root)
	f := mustFolder(t, mustUser(t, s, "k@x.test"), "Archive")
	uid, err := f.Append(strings.NewReader(msg(1)), nil, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < maxKeywords; i++ {
		if _, err := f.SetFlags([]UID{uid}, FlagsAdd, []Flag{Flag("kw" + string(rune('A'+i)))}); err != nil {
			t.Fatalf("keyword %d: %v", i, err)
		}
	}
	if _, err := f.SetFlags([]UID{uid}, FlagsAdd, []Flag{"OneTooMany"}); !errors.Is(err, ErrNotPermitted) {
		t.Fatalf("27th keyword: %v", err)
	}
	// Case-insensitive match reuses the letter; removing an unknown keyword
	// defines nothing.
	if _, err := f.SetFlags([]UID{uid}, FlagsRemove, []Flag{"KWA", "never-defined"}); err != nil {
		t.Fatal(err)
	}
	msgs := mustSync(t, f)
	if n := len(msgs[0].Flags); n != maxKeywords-1 {
		t.Fatalf("%d flags: %v", n, msgs[0].Flags)
	}
	if kw := f.Keywords(); len(kw) != maxKeywords || kw[0] != "kwA" {
		t.Fatalf("keywords %v", kw)
	}
	for _, bad := range []Flag{"", "a b", "x(y", `\Bogus`, "a\x00", "%"} {
		if _, err := f.SetFlags([]UID{uid}, FlagsAdd, []Flag{bad}); !errors.Is(err, ErrNotPermitted) {
			t.Errorf("flag %q: %v", bad, err)
		}
	}
	data, _ := os.ReadFile(filepath.Join(root, "x.test", "k", ".Archive", "dovecot-keywords"))
	if !strings.HasPrefix(string(data), "0 kwA\n1 kwB\n") || strings.Contains(string(data), "never") {
		t.Fatalf("dovecot-keywords %q", data)
	}
}
