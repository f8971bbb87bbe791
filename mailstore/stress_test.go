package mailstore

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// Everything at once for a moment, under -race: deliveries, appends,
// syncs, flag changes, expunges, copies and moves both ways, folder
// creation/rename/deletion and watchers. It must not deadlock, race or
// lose track: afterwards every folder's index matches a fresh Store's.
func TestStressMixedOperations(t *testing.T) {
	root := t.TempDir()
	s := openStore(t, root)
	u := mustUser(t, s, "st@x.test")
	events, cancel := u.Watch()
	defer cancel()
	go func() {
		for range events {
		}
	}()
	stop := time.After(1500 * time.Millisecond)
	done := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	run := func(name string, op func(i int) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				if err := op(i); err != nil {
					errs <- fmt.Errorf("%s: %w", name, err)
					return
				}
			}
		}()
	}
	folder := func(name string) *Folder {
		f, err := u.Folder(name)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	inbox, arch, trash := folder(Inbox), folder("Archive"), folder("Trash")
	run("deliver", func(i int) error { return tryDeliver(s, msg(i), "st@x.test") })
	run("append", func(i int) error {
		_, err := arch.Append(strings.NewReader(msg(i)), []Flag{FlagSeen}, time.Time{})
		return err
	})
	for _, f := range []*Folder{inbox, arch, trash} {
		run("sync "+f.Name(), func(int) error { _, err := f.Sync(); return err })
	}
	run("flags", func(i int) error {
		msgs, err := inbox.Sync()
		if err != nil || len(msgs) == 0 {
			return err
		}
		_, err = inbox.SetFlags([]UID{msgs[i%len(msgs)].UID}, FlagOp(i%3), []Flag{FlagFlagged, "Tag"})
		return err
	})
	run("move", func(i int) error {
		src, dst := inbox, trash
		if i%2 == 1 {
			src, dst = arch, inbox
		}
		msgs, err := src.Sync()
		if err != nil || len(msgs) < 2 {
			return err
		}
		_, _, err = src.MoveTo([]UID{msgs[0].UID}, dst)
		return err
	})
	run("copy", func(i int) error {
		msgs, err := trash.Sync()
		if err != nil || len(msgs) == 0 {
			return err
		}
		_, _, err = trash.CopyTo([]UID{msgs[len(msgs)-1].UID}, arch)
		return err
	})
	run("expunge", func(i int) error {
		msgs, err := trash.Sync()
		if err != nil || len(msgs) < 3 {
			return err
		}
		_, err = trash.Expunge([]UID{msgs[0].UID, msgs[1].UID})
		return err
	})
	run("folders", func(i int) error {
		a, b := fmt.Sprintf("Tmp%d", i), fmt.Sprintf("Renamed%d", i)
		if err := u.CreateFolder(a, UseNone); err != nil {
			return err
		}
		f, err := u.Folder(a)
		if err != nil {
			return err
		}
		if _, err := f.Append(strings.NewReader("x\n"), nil, time.Time{}); err != nil {
			return err
		}
		if err := u.RenameFolder(a, b); err != nil {
			return err
		}
		if _, err := f.Sync(); !errors.Is(err, ErrNoSuchFolder) {
			return fmt.Errorf("handle of renamed folder: %v", err)
		}
		_, err = u.Folders()
		if err == nil {
			err = u.DeleteFolder(b)
		}
		return err
	})
	// A second process on the same tree.
	other := openStore(t, root)
	oinbox := mustFolder(t, mustUser(t, other, "st@x.test"), Inbox)
	run("other deliver", func(i int) error { return tryDeliver(other, msg(i), "st@x.test") })
	run("other flags+expunge", func(i int) error {
		msgs, err := oinbox.Sync()
		if err != nil || len(msgs) < 4 {
			return err
		}
		if i%5 == 4 {
			_, err = oinbox.Expunge([]UID{msgs[1].UID})
			return err
		}
		_, err = oinbox.SetFlags([]UID{msgs[i%len(msgs)].UID}, FlagsAdd, []Flag{FlagSeen, "Other"})
		return err
	})
	<-stop
	close(done)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	fresh := openStore(t, root)
	fu := mustUser(t, fresh, "st@x.test")
	total := 0
	for _, name := range []string{Inbox, "Archive", "Trash"} {
		got := mustSync(t, folder(name))
		want := mustSync(t, mustFolder(t, fu, name))
		if len(got) != len(want) {
			t.Fatalf("%s: %d messages here, %d in a fresh store", name, len(got), len(want))
		}
		for i := range got {
			if got[i].UID != want[i].UID || got[i].Key != want[i].Key || flagsString(got[i].Flags) != flagsString(want[i].Flags) {
				t.Fatalf("%s differs at %d: %+v vs %+v", name, i, got[i], want[i])
			}
		}
		total += len(got)
	}
	if total == 0 {
		t.Fatal("nothing happened")
	}
	og, fg := mustSync(t, oinbox), mustSync(t, mustFolder(t, fu, Inbox))
	if len(og) != len(fg) {
		t.Fatalf("other process: %d messages, fresh store %d", len(og), len(fg))
	}
	for i := range og {
		if og[i].UID != fg[i].UID || og[i].Key != fg[i].Key || flagsString(og[i].Flags) != flagsString(fg[i].Flags) {
			t.Fatalf("other process differs at %d: %+v vs %+v", i, og[i], fg[i])
		}
	}
	t.Logf("%d messages in the end", total)
}
