package mailstore

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestConcurrentDeliveryUIDs(t *testing.T) {
	root := t.TempDir()
	s := openStore(t, root)
	const workers, each = 20, 200
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if err := tryDeliver(s, msg(w*each+i), "Bob@Example.COM"); err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	// Sync concurrently with the deliveries, as IMAP sessions would.
	u := mustUser(t, s, "bob@example.com")
	inbox := mustFolder(t, u, "inbox")
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for syncing := true; syncing; {
		select {
		case <-done:
			syncing = false
		case err := <-errs:
			t.Fatal(err)
		default:
			mustSync(t, inbox)
			time.Sleep(5 * time.Millisecond)
		}
	}
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	msgs := mustSync(t, inbox)
	if len(msgs) != workers*each {
		t.Fatalf("got %d messages, want %d", len(msgs), workers*each)
	}
	byKey := map[string]UID{}
	for i, m := range msgs {
		if i > 0 && m.UID <= msgs[i-1].UID {
			t.Fatalf("UIDs not increasing at %d: %d after %d", i, m.UID, msgs[i-1].UID)
		}
		byKey[m.Key] = m.UID
	}
	validity := inbox.UIDValidity()
	if validity == 0 {
		t.Fatal("no UIDVALIDITY")
	}
	if len(filesIn(t, filepath.Join(root, "example.com", "bob", "new"))) != 0 {
		t.Error("new/ not emptied by Sync")
	}
	if tmp := filesIn(t, filepath.Join(root, tmpDirName)); len(tmp) != 0 {
		t.Errorf("temp files left: %v", tmp)
	}
	s.Close()

	// A new Store on the same root sees the same UIDs and UIDVALIDITY.
	s2 := openStore(t, root)
	inbox2 := mustFolder(t, mustUser(t, s2, "bob@example.com"), "INBOX")
	msgs2 := mustSync(t, inbox2)
	if len(msgs2) != len(msgs) {
		t.Fatalf("after reopen: %d messages, want %d", len(msgs2), len(msgs))
	}
	for _, m := range msgs2 {
		if byKey[m.Key] != m.UID {
			t.Fatalf("after reopen %s has UID %d, was %d", m.Key, m.UID, byKey[m.Key])
		}
	}
	if inbox2.UIDValidity() != validity {
		t.Fatalf("UIDVALIDITY changed on reopen: %d -> %d", validity, inbox2.UIDValidity())
	}
	st, err := inbox2.Status()
	if err != nil {
		t.Fatal(err)
	}
	if st.Messages != workers*each || st.UIDNext != msgs[len(msgs)-1].UID+1 || st.UIDValidity != validity {
		t.Fatalf("status %+v", st)
	}
}

func TestMessageContentAndSizes(t *testing.T) {
	s := openStore(t, t.TempDir())
	body := "Subject: x\n\nline1\nline2\r\n"
	deliver(t, s, body, "a@example.org")
	f := mustFolder(t, mustUser(t, s, "a@example.org"), Inbox)
	msgs := mustSync(t, f)
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	m := msgs[0]
	if m.Size != int64(len(body)) || m.VSize != int64(len(body))+3 {
		t.Fatalf("size %d vsize %d, want %d %d", m.Size, m.VSize, len(body), len(body)+3)
	}
	if !m.Recent || len(m.Flags) != 0 || m.UID != 1 {
		t.Fatalf("info %+v", m)
	}
	r, err := f.Open(m.UID)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r)
	r.Close()
	if string(got) != body {
		t.Fatalf("content %q", got)
	}
	if _, err := f.Open(99); !errors.Is(err, ErrNoSuchMessage) {
		t.Fatalf("Open(99): %v", err)
	}
}

func TestFlagsAcrossHandlesAndProcesses(t *testing.T) {
	root := t.TempDir()
	s1 := openStore(t, root)
	s2 := openStore(t, root) // stands in for a second process
	for i := 0; i < 3; i++ {
		deliver(t, s1, msg(i), "u@x.test")
	}
	a := mustFolder(t, mustUser(t, s1, "u@x.test"), Inbox)
	b := mustFolder(t, mustUser(t, s1, "u@x.test"), Inbox)
	c := mustFolder(t, mustUser(t, s2, "u@x.test"), Inbox)
	ma := mustSync(t, a)
	mc := mustSync(t, c)
	if len(ma) != 3 || len(mc) != 3 || ma[2].UID != mc[2].UID || ma[2].Key != mc[2].Key {
		t.Fatalf("handles disagree: %v vs %v", ma, mc)
	}
	infos, err := a.SetFlags([]UID{ma[1].UID}, FlagsAdd, []Flag{FlagSeen, `\flagged`, "$Label1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 1 || flagsString(infos[0].Flags) != `\Flagged \Seen $Label1` {
		t.Fatalf("SetFlags returned %+v", infos)
	}
	if got := flagsString(mustSync(t, b)[1].Flags); got != `\Flagged \Seen $Label1` {
		t.Fatalf("other handle sees %q", got)
	}
	if got := flagsString(mustSync(t, c)[1].Flags); got != `\Flagged \Seen $Label1` {
		t.Fatalf("other process sees %q", got)
	}
	// Now the other way, and the first handle must re-read the file name.
	if _, err := c.SetFlags([]UID{mc[1].UID}, FlagsRemove, []Flag{FlagFlagged}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetFlags([]UID{mc[0].UID}, FlagsReplace, []Flag{FlagAnswered, FlagDeleted}); err != nil {
		t.Fatal(err)
	}
	ma = mustSync(t, a)
	if got := flagsString(ma[1].Flags); got != `\Seen $Label1` {
		t.Fatalf("after remove: %q", got)
	}
	if got := flagsString(ma[0].Flags); got != `\Answered \Deleted` {
		t.Fatalf("after replace: %q", got)
	}
	// Content still readable through the first store after the rename.
	r, err := a.Open(ma[1].UID)
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	// Renamed under a handle that has not synced: Open finds it by key.
	if _, err := a.SetFlags([]UID{ma[2].UID}, FlagsAdd, []Flag{FlagSeen}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetFlags([]UID{ma[2].UID}, FlagsAdd, []Flag{FlagDraft}); err != nil {
		t.Fatal(err)
	}
	r, err = a.Open(ma[2].UID)
	if err != nil {
		t.Fatalf("open after foreign rename: %v", err)
	}
	r.Close()
	if kw := a.Keywords(); len(kw) != 1 || kw[0] != "$Label1" {
		t.Fatalf("keywords %v", kw)
	}
}

func TestPickUpDroppedFiles(t *testing.T) {
	root := t.TempDir()
	s := openStore(t, root)
	f := mustFolder(t, mustUser(t, s, "drop@x.test"), Inbox)
	deliver(t, s, msg(1), "drop@x.test")
	if n := len(mustSync(t, f)); n != 1 {
		t.Fatalf("%d", n)
	}
	dir := filepath.Join(root, "x.test", "drop")
	body := "Subject: by hand\n\nhello\n"
	os.WriteFile(filepath.Join(dir, "new", "1000000000.handmade"), []byte(body), 0o600)
	os.WriteFile(filepath.Join(dir, "cur", "1000000001.other:2,S"), []byte(body), 0o600)
	os.WriteFile(filepath.Join(dir, "cur", "1000000002.noinfo"), []byte(body), 0o600)
	msgs := mustSync(t, f)
	if len(msgs) != 4 {
		t.Fatalf("got %d messages", len(msgs))
	}
	want := []string{"1000000000.handmade", "1000000001.other", "1000000002.noinfo"}
	for i, k := range want {
		m := msgs[i+1]
		if m.Key != k || m.UID != UID(i+2) {
			t.Fatalf("message %d: %+v, want key %s", i+1, m, k)
		}
		if m.Size != int64(len(body)) || m.VSize != int64(len(body)+3) {
			t.Fatalf("sizes of %s: %d %d", k, m.Size, m.VSize)
		}
	}
	if flagsString(msgs[2].Flags) != `\Seen` {
		t.Fatalf("flags %v", msgs[2].Flags)
	}
	// Vanished behind our back: expunged.
	os.Remove(filepath.Join(dir, "cur", "1000000001.other:2,S"))
	msgs = mustSync(t, f)
	if len(msgs) != 3 || msgs[2].Key != "1000000002.noinfo" {
		t.Fatalf("after removal: %+v", msgs)
	}
}

func TestExpungeDurableAndAppend(t *testing.T) {
	root := t.TempDir()
	s := openStore(t, root)
	u := mustUser(t, s, "e@x.test")
	f := mustFolder(t, u, "Drafts")
	date := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	var uids []UID
	for i := 0; i < 4; i++ {
		uid, err := f.Append(strings.NewReader(msg(i)), []Flag{FlagDraft, "Work"}, date)
		if err != nil {
			t.Fatal(err)
		}
		uids = append(uids, uid)
	}
	if uids[0] != 1 || uids[3] != 4 {
		t.Fatalf("append UIDs %v", uids)
	}
	removed, err := f.Expunge([]UID{2, 3, 77})
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 2 || removed[0] != 2 || removed[1] != 3 {
		t.Fatalf("removed %v", removed)
	}
	s.Close()
	s2 := openStore(t, root)
	msgs := mustSync(t, mustFolder(t, mustUser(t, s2, "e@x.test"), "Drafts"))
	if len(msgs) != 2 || msgs[0].UID != 1 || msgs[1].UID != 4 {
		t.Fatalf("after reopen %+v", msgs)
	}
	if !msgs[0].InternalDate.Equal(date) || flagsString(msgs[0].Flags) != `\Draft Work` {
		t.Fatalf("date/flags %+v", msgs[0])
	}
	uid, err := mustFolder(t, mustUser(t, s2, "e@x.test"), "Drafts").Append(strings.NewReader("x\n"), nil, time.Time{})
	if err != nil || uid != 5 {
		t.Fatalf("append after reopen: %d %v", uid, err)
	}
}
