package mailstore

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Two Stores on one tree stand in for two processes (two mailsuites, or
// mailsuite beside a delivery agent): while both deliver, append and sync
// at once, every file must get exactly one UID that both agree on.
func TestTwoProcessesAgreeOnUIDs(t *testing.T) {
	root := t.TempDir()
	stores := []*Store{openStore(t, root), openStore(t, root)}
	const perWriter = 60
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	stop := make(chan struct{})
	for i, s := range stores {
		f := mustFolder(t, mustUser(t, s, "shared@x.test"), Inbox)
		wg.Add(2)
		go func() { // deliveries through the store
			defer wg.Done()
			for n := 0; n < perWriter; n++ {
				if err := tryDeliver(s, msg(n), "shared@x.test"); err != nil {
					errs <- err
					return
				}
			}
		}()
		go func() { // appends (UIDs assigned at once, under the dotlock)
			defer wg.Done()
			for n := 0; n < perWriter/2; n++ {
				if _, err := f.Append(strings.NewReader(msg(n)), []Flag{FlagSeen}, time.Time{}); err != nil {
					errs <- err
					return
				}
			}
		}()
		go func(i int) { // a session syncing all the time
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := f.Sync(); err != nil {
					errs <- fmt.Errorf("store %d sync: %w", i, err)
					return
				}
			}
		}(i)
	}
	// A third "program" drops files into new/ by hand.
	dir := filepath.Join(root, "x.test", "shared")
	for n := 0; n < 40; n++ {
		os.WriteFile(filepath.Join(dir, "tmp", fmt.Sprintf("%d.hand%d", 1000+n, n)), []byte(msg(n)), 0o600)
		os.Rename(filepath.Join(dir, "tmp", fmt.Sprintf("%d.hand%d", 1000+n, n)), filepath.Join(dir, "new", fmt.Sprintf("%d.hand%d", 1000+n, n)))
	}
	wg.Wait()
	close(stop)
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	want := 2*perWriter + 2*(perWriter/2) + 40
	var views [][]MessageInfo
	for _, s := range append(stores, openStore(t, root)) {
		views = append(views, mustSync(t, mustFolder(t, mustUser(t, s, "shared@x.test"), Inbox)))
	}
	for i, v := range views {
		if len(v) != want {
			t.Fatalf("view %d has %d messages, want %d", i, len(v), want)
		}
		for j := range v {
			if v[j].UID != views[0][j].UID || v[j].Key != views[0][j].Key {
				t.Fatalf("view %d differs at %d: %d %s vs %d %s", i, j, v[j].UID, v[j].Key, views[0][j].UID, views[0][j].Key)
			}
			if j > 0 && v[j].UID <= v[j-1].UID {
				t.Fatalf("UIDs not increasing")
			}
		}
	}
	data, err := os.ReadFile(filepath.Join(dir, "dovecot-uidlist"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := parseUIDList(data)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]UID{}
	for _, r := range l.recs {
		if u, dup := seen[r.key]; dup {
			t.Fatalf("%s listed twice (UIDs %d and %d)", r.key, u, r.uid)
		}
		seen[r.key] = r.uid
	}
	for _, m := range views[0] {
		if seen[m.Key] != m.UID {
			t.Fatalf("uidlist has %s as %d, index %d", m.Key, seen[m.Key], m.UID)
		}
	}
}

// Two processes changing flags of the same messages at once: every file
// survives exactly once, both end with the same view, and no flag either
// one added is lost.
func TestTwoProcessesFlagRace(t *testing.T) {
	root := t.TempDir()
	a, b := openStore(t, root), openStore(t, root)
	for i := 0; i < 20; i++ {
		deliver(t, a, msg(i), "race@x.test")
	}
	fa := mustFolder(t, mustUser(t, a, "race@x.test"), Inbox)
	fb := mustFolder(t, mustUser(t, b, "race@x.test"), Inbox)
	msgs := mustSync(t, fa)
	mustSync(t, fb)
	var wg sync.WaitGroup
	for _, w := range []struct {
		f    *Folder
		flag Flag
	}{{fa, FlagSeen}, {fb, FlagFlagged}, {fa, "KwA"}, {fb, "KwB"}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := 0; round < 3; round++ {
				for _, m := range msgs {
					if _, err := w.f.SetFlags([]UID{m.UID}, FlagsAdd, []Flag{w.flag}); err != nil {
						t.Error(err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	dir := filepath.Join(root, "x.test", "race", "cur")
	if n := len(filesIn(t, dir)); n != len(msgs) {
		t.Fatalf("%d files in cur/, want %d", n, len(msgs))
	}
	va, vb := mustSync(t, fa), mustSync(t, fb)
	for i := range va {
		if flagsString(va[i].Flags) != flagsString(vb[i].Flags) {
			t.Fatalf("views differ for UID %d: %v vs %v", va[i].UID, va[i].Flags, vb[i].Flags)
		}
	}
	// Renaming from the exact name one read is a compare-and-swap: a
	// process whose view is stale gets ENOENT, re-reads and retries, so no
	// update is lost.
	if len(va) != len(msgs) {
		t.Fatalf("%d messages", len(va))
	}
	for _, m := range va {
		if got := flagsString(m.Flags); got != `\Flagged \Seen KwA KwB` {
			t.Fatalf("UID %d has %q", m.UID, got)
		}
	}
}

// A full rewrite of dovecot-uidlist keeps another process's records for
// files this process has not indexed yet, and drops records of files gone.
func TestRewriteKeepsOthersRecords(t *testing.T) {
	root := t.TempDir()
	s := openStore(t, root)
	deliver(t, s, msg(1), "rw@x.test")
	f := mustFolder(t, mustUser(t, s, "rw@x.test"), Inbox)
	mustSync(t, f)
	dir := filepath.Join(root, "x.test", "rw")
	// Another process placed a file and recorded UID 7 for it; a record
	// for UID 5 names a file that was expunged since.
	os.WriteFile(filepath.Join(dir, "cur", "1600000000.other:2,S"), []byte(msg(2)), 0o600)
	lf, _ := os.OpenFile(filepath.Join(dir, "dovecot-uidlist"), os.O_APPEND|os.O_WRONLY, 0)
	lf.WriteString("5 :1500000000.gone\n7 :1600000000.other\n")
	lf.Close()
	ix := f.ix
	ix.mu.Lock()
	lk, err := s.lockUIDList(dir)
	if err != nil {
		t.Fatal(err)
	}
	ul, _, err := ix.readUIDList()
	if err == nil {
		err = ix.writeUIDList(ul)
	}
	lk.unlock()
	ix.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "dovecot-uidlist"))
	if !strings.Contains(string(data), "7 :1600000000.other\n") || strings.Contains(string(data), "gone") {
		t.Fatalf("rewritten list:\n%s", data)
	}
	msgs := mustSync(t, f)
	if len(msgs) != 2 || msgs[1].UID != 7 || msgs[1].Key != "1600000000.other" {
		t.Fatalf("after rewrite %+v", msgs)
	}
}
