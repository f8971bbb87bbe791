// Package atomicfile is the project's one helper for replacing a file
// atomically and durably: write a temp file in the same directory, fsync it,
// rename it over the target, fsync the directory. A reader sees either the
// old or the new content, never a mix, and after a successful return the new
// content survives a crash.
//
// It does not lock: callers that race to replace the same file serialise
// themselves (e.g. mailstore holds Dovecot's dotlock).
package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Step names a point in a write where a test may inject a failure.
type Step int

const (
	StepCreate  Step = iota + 1 // creating the temp file
	StepWrite                   // writing content
	StepSync                    // fsync of the temp file
	StepRename                  // rename over the target
	StepSyncDir                 // fsync of the directory
)

func (s Step) String() string {
	switch s {
	case StepCreate:
		return "create"
	case StepWrite:
		return "write"
	case StepSync:
		return "sync"
	case StepRename:
		return "rename"
	case StepSyncDir:
		return "syncdir"
	}
	return fmt.Sprintf("step(%d)", int(s))
}

// Writer writes files atomically. The zero value writes with mode 0600 and
// no failure injection.
type Writer struct {
	// Perm is the new file's mode (default 0600).
	Perm os.FileMode
	// Fail, if set, is called before each step; a non-nil error aborts the
	// write at that step as if the system call had failed (test seam).
	Fail func(step Step, path string) error
}

// WriteFile replaces path with data using a zero Writer.
func WriteFile(path string, data []byte) error {
	return Writer{}.WriteFile(path, data)
}

// WriteFile replaces path with data.
func (w Writer) WriteFile(path string, data []byte) error {
	return w.Write(path, func(out io.Writer) error {
		_, err := out.Write(data)
		return err
	})
}

// Write replaces path with what fill writes. If fill or any step fails, the
// target is untouched and the temp file removed.
func (w Writer) Write(path string, fill func(io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	perm := w.Perm
	if perm == 0 {
		perm = 0o600
	}
	if err := w.fail(StepCreate, path); err != nil {
		return fmt.Errorf("atomicfile: create temp for %s: %w", path, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("atomicfile: create temp for %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("atomicfile: chmod %s: %w", tmp, err)
	}
	if err := w.fail(StepWrite, path); err != nil {
		return fmt.Errorf("atomicfile: write %s: %w", tmp, err)
	}
	if err := fill(f); err != nil {
		return fmt.Errorf("atomicfile: write %s: %w", tmp, err)
	}
	if err := w.fail(StepSync, path); err != nil {
		return fmt.Errorf("atomicfile: fsync %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("atomicfile: fsync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("atomicfile: close %s: %w", tmp, err)
	}
	if err := w.fail(StepRename, path); err != nil {
		return fmt.Errorf("atomicfile: rename to %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("atomicfile: rename to %s: %w", path, err)
	}
	// From here the new content is in place; a failing directory fsync is
	// still reported because durability is not guaranteed without it.
	if err := w.fail(StepSyncDir, path); err != nil {
		return fmt.Errorf("atomicfile: fsync dir of %s: %w", path, err)
	}
	if err := SyncDir(dir); err != nil {
		return fmt.Errorf("atomicfile: fsync dir of %s: %w", path, err)
	}
	return nil
}

func (w Writer) fail(step Step, path string) error {
	if w.Fail == nil {
		return nil
	}
	return w.Fail(step, path)
}

// SyncDir fsyncs a directory so that entries created, renamed or removed in
// it are durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil && errors.Is(err, os.ErrInvalid) {
		return nil
	}
	return err
}
