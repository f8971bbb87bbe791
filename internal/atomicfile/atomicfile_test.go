package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteFileReplaces(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := WriteFile(p, []byte("one")); err != nil {
		t.Fatal(err)
	}
	if err := (Writer{Perm: 0o640}).WriteFile(p, []byte("two")); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(p)
	st, _ := os.Stat(p)
	if string(got) != "two" || st.Mode().Perm() != 0o640 {
		t.Fatalf("content %q mode %v", got, st.Mode())
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("temp files left: %v", ents)
	}
}

func TestInjectedFailuresLeaveTargetUntouched(t *testing.T) {
	injected := errors.New("injected")
	for _, step := range []Step{StepCreate, StepWrite, StepSync, StepRename} {
		t.Run(step.String(), func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "f")
			WriteFile(p, []byte("old"))
			w := Writer{Fail: func(s Step, path string) error {
				if s == step && path == p {
					return injected
				}
				return nil
			}}
			err := w.WriteFile(p, []byte("new"))
			if !errors.Is(err, injected) {
				t.Fatalf("err %v", err)
			}
			got, _ := os.ReadFile(p)
			if string(got) != "old" {
				t.Fatalf("target changed to %q", got)
			}
			ents, _ := os.ReadDir(dir)
			if len(ents) != 1 {
				t.Fatalf("temp files left: %v", ents)
			}
		})
	}
	// A failing directory fsync is reported (durability unknown) though
	// the content is already in place.
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	err := Writer{Fail: func(s Step, _ string) error {
		if s == StepSyncDir {
			return io.ErrShortWrite
		}
		return nil
	}}.WriteFile(p, []byte("x"))
	if !errors.Is(err, io.ErrShortWrite) {
		t.Fatalf("syncdir failure not reported: %v", err)
	}
}

func TestFillErrorAborts(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	boom := errors.New("boom")
	err := Writer{}.Write(p, func(w io.Writer) error {
		w.Write([]byte("partial"))
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("target created by failed write")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("left %v", ents)
	}
}
