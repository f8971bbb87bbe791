package mailstore

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"syscall"
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
	b := make([]byte, 0, 64+len(s.hostname))
	b = strconv.AppendInt(b, us/1e6, 10)
	b = append(b, ".M"...)
	b = strconv.AppendInt(b, us%1e6, 10)
	b = append(b, 'P')
	b = strconv.AppendInt(b, int64(s.pid), 10)
	b = append(b, 'Q')
	b = strconv.AppendUint(b, s.seq.Add(1), 10)
	b = append(b, '.')
	b = append(b, s.hostname...)
	return string(b)
}

func sizedKey(key string, size, vsize int64) string {
	return key + ",S=" + strconv.FormatInt(size, 10) + ",W=" + strconv.FormatInt(vsize, 10)
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

// tempMessage is a message file being written: named in a tmp/
// directory, or unnamed (see tmpfile_linux.go) until linked into place.
type tempMessage struct {
	s       *Store
	path    string    // "" when unnamed
	unnamed UnnamedFS // set when unnamed
	f       File
	bw      *bufio.Writer
	cnt     sizeCounter
	err     error
}

// writerPool recycles the 32 KiB write buffers (one per delivery).
var writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 32<<10) }}

func newTempMessage(s *Store, path string, f File) *tempMessage {
	bw := writerPool.Get().(*bufio.Writer)
	bw.Reset(f)
	return &tempMessage{s: s, path: path, f: f, bw: bw}
}

func (s *Store) createTemp(dir, key string) (*tempMessage, error) {
	path := dir + "/" + key
	f, err := s.fs.Create(path)
	if err != nil {
		return nil, fmt.Errorf("mailstore: create %s: %w", path, err)
	}
	return newTempMessage(s, path, f), nil
}

// createDeliveryFile opens the file a delivery is written to: unnamed when
// the file system allows it (Open probed it), else a named file in dir.
func (s *Store) createDeliveryFile(dir string) (*tempMessage, error) {
	if u := s.unnamed; u != nil {
		f := s.pooledFile()
		var err error
		if f == nil {
			f, err = u.CreateUnnamed(dir)
		}
		if err == nil {
			t := newTempMessage(s, "", f)
			t.unnamed = u
			return t, nil
		}
		if !unnamedUnsupported(err) {
			return nil, fmt.Errorf("mailstore: create: %w", err)
		}
	}
	return s.createTemp(dir, s.newKey(time.Now()))
}

var errUnnamedUnsupported = errors.New("unnamed files not supported")

// unnamedUnsupported tells a file system or kernel without O_TMPFILE
// (EOPNOTSUPP; EISDIR from kernels before 3.11, which see O_DIRECTORY).
func unnamedUnsupported(err error) bool {
	return errors.Is(err, errUnnamedUnsupported) || errors.Is(err, syscall.EOPNOTSUPP) ||
		errors.Is(err, syscall.EISDIR) || errors.Is(err, syscall.EINVAL)
}

// probeUnnamed reports whether unnamed files can be created in dir and
// linked into it (O_TMPFILE supported, /proc mounted).
func (s *Store) probeUnnamed(u UnnamedFS, dir string) bool {
	f, err := u.CreateUnnamed(dir)
	if err != nil {
		s.log.Debug("mailstore: using named temp files", "dir", dir, "err", err)
		return false
	}
	defer f.Close()
	name := dir + "/" + s.newKey(time.Now()) + ".probe"
	if err := u.LinkUnnamed(f, name); err != nil {
		s.log.Debug("mailstore: using named temp files", "dir", dir, "err", err)
		return false
	}
	os.Remove(name)
	return true
}

func (t *tempMessage) Write(p []byte) (int, error) {
	if t.err != nil {
		return 0, t.err
	}
	n, err := t.bw.Write(p)
	t.cnt.Write(p[:n])
	if err != nil {
		t.err = fmt.Errorf("mailstore: write %s: %w", t.name(), err)
		return n, t.err
	}
	return n, nil
}

func (t *tempMessage) name() string {
	if t.path == "" {
		return "delivery file"
	}
	return t.path
}

// finish flushes and fsyncs the file; a named one is also closed (an
// unnamed one stays open: it is linked through its descriptor).
func (t *tempMessage) finish() error {
	if t.err != nil {
		return t.err
	}
	if err := t.bw.Flush(); err != nil {
		t.err = fmt.Errorf("mailstore: write %s: %w", t.name(), err)
		return t.err
	}
	if err := t.f.Sync(); err != nil {
		t.err = fmt.Errorf("mailstore: fsync %s: %w", t.name(), err)
		return t.err
	}
	if t.unnamed != nil {
		return nil
	}
	if err := t.f.Close(); err != nil {
		t.err = fmt.Errorf("mailstore: close %s: %w", t.name(), err)
		return t.err
	}
	t.f = nil
	return nil
}

// link makes dst a name of the finished file.
func (t *tempMessage) link(dst string) error {
	if t.unnamed != nil {
		return t.unnamed.LinkUnnamed(t.f, dst)
	}
	return t.s.link(t.path, dst)
}

// discard closes the file and removes its temp name, if any.
func (t *tempMessage) discard() {
	if t.f != nil {
		t.f.Close()
		t.f = nil
	}
	if t.bw != nil {
		t.bw.Reset(nil)
		writerPool.Put(t.bw)
		t.bw = nil
	}
	if t.path != "" {
		os.Remove(t.path)
	}
}
