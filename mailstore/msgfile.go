package mailstore

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"time"
)

// newKey returns a unique maildir base name (without sizes):
// "<unix>.M<usec>P<pid>Q<n>.<host>" as Dovecot writes them (plus Q). The
// time in it never goes backwards within a Store: a clock stepped back, or
// a second key in the same microsecond, takes the last time plus 1µs. Sync
// gives picked-up files UIDs in name-time order (deliveryOrder), so keys
// made one after another sort one after another.
func (s *Store) newKey(now time.Time) string {
	us := now.UnixMicro()
	for {
		last := s.lastKeyTime.Load()
		us = max(us, last+1)
		if s.lastKeyTime.CompareAndSwap(last, us) {
			break
		}
	}
	n := s.seq.Add(1)
	return fmt.Sprintf("%d.M%dP%dQ%d.%s", us/1e6, us%1e6, s.pid, n, s.hostname)
}

func sizedKey(key string, size, vsize int64) string {
	return fmt.Sprintf("%s,S=%d,W=%d", key, size, vsize)
}

// sizeCounter counts octets and the size with every line ending as CRLF
// (RFC 3501 §2.3.4 RFC822.SIZE, POP3 LIST sizes).
type sizeCounter struct {
	size, vsize int64
	lastCR      bool
}

func (c *sizeCounter) Write(p []byte) (int, error) {
	c.size += int64(len(p))
	c.vsize += int64(len(p))
	for i, b := range p {
		if b == '\n' {
			prevCR := c.lastCR
			if i > 0 {
				prevCR = p[i-1] == '\r'
			}
			if !prevCR {
				c.vsize++
			}
		}
	}
	if len(p) > 0 {
		c.lastCR = p[len(p)-1] == '\r'
	}
	return len(p), nil
}

// fileVSize reads a file once to learn its CRLF size (files others wrote
// without ",W=").
func fileVSize(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var c sizeCounter
	if _, err := io.Copy(&c, bufio.NewReaderSize(f, 64<<10)); err != nil {
		return 0, err
	}
	return c.vsize, nil
}

// tempMessage is a message file being written in a tmp/ directory.
type tempMessage struct {
	s    *Store
	path string
	f    File
	bw   *bufio.Writer
	cnt  sizeCounter
	err  error
}

func (s *Store) createTemp(dir, key string) (*tempMessage, error) {
	path := dir + "/" + key
	f, err := s.fs.Create(path)
	if err != nil {
		return nil, fmt.Errorf("mailstore: create %s: %w", path, err)
	}
	return &tempMessage{s: s, path: path, f: f, bw: bufio.NewWriterSize(f, 32<<10)}, nil
}

func (t *tempMessage) Write(p []byte) (int, error) {
	if t.err != nil {
		return 0, t.err
	}
	n, err := t.bw.Write(p)
	t.cnt.Write(p[:n])
	if err != nil {
		t.err = fmt.Errorf("mailstore: write %s: %w", t.path, err)
		return n, t.err
	}
	return n, nil
}

// finish flushes, fsyncs and closes the file.
func (t *tempMessage) finish() error {
	if t.err != nil {
		return t.err
	}
	if err := t.bw.Flush(); err != nil {
		t.err = fmt.Errorf("mailstore: write %s: %w", t.path, err)
		return t.err
	}
	if err := t.f.Sync(); err != nil {
		t.err = fmt.Errorf("mailstore: fsync %s: %w", t.path, err)
		return t.err
	}
	if err := t.f.Close(); err != nil {
		t.err = fmt.Errorf("mailstore: close %s: %w", t.path, err)
		return t.err
	}
	t.f = nil
	return nil
}

// discard closes and removes the file.
func (t *tempMessage) discard() {
	if t.f != nil {
		t.f.Close()
		t.f = nil
	}
	os.Remove(t.path)
}
