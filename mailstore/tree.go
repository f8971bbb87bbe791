package mailstore

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mailsuite/mailsuite/internal/atomicfile"
)

// FS is the file-system seam for failure injection in tests.
type FS interface {
	// Create creates a new file for writing (like os.OpenFile with
	// O_CREATE|O_EXCL|O_WRONLY).
	Create(path string) (File, error)
}

// File is the part of *os.File the store writes through.
type File interface {
	io.Writer
	Sync() error
	Close() error
}

type osFS struct{}

func (osFS) Create(path string) (File, error) {
	return os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
}

// tmpDirName holds delivery temp files at the root. Domain directories can
// never start with a dot, so it cannot collide with a maildir.
const tmpDirName = ".mailsuite-tmp"

// Store is the whole tree. Safe for concurrent use by many sessions; safe
// beside other processes (Dovecot, a delivery agent) using the same maildirs.
type Store struct {
	opts Options
	log  *slog.Logger
	fs   FS
	aw   atomicfile.Writer // every index-file writer; Fail is the test seam
	// unnamed creates delivery files without a name when the FS can
	// (probed at Open); nil: named temp files in tmpDir.
	unnamed UnnamedFS
	pool    *filePool // spare unnamed files; nil if not used
	// linkSync: unnamed files are fsynced again once linked (file systems
	// without a journal; see linkNeedsInodeSync).
	linkSync bool

	root, tmpDir string
	hostname     string // as used in file names
	lockHost     string // as written in dotlocks (the system's name, like Dovecot)
	pid          int
	opened       time.Time
	seq          atomic.Uint64
	lastKeyTime  atomic.Int64 // unix µs in the last key made (newKey)

	mu        sync.Mutex
	closed    bool
	users     map[string]*userState
	indexes   map[string]*index // by folder directory
	lastValid uint32
	dirSyncs  map[string]*dirSyncer

	done chan struct{}
	wg   sync.WaitGroup

	lockTimeout time.Duration // how long to wait for a dotlock; 0: dotlockTimeout (tests shorten it)
}

// Open opens (creating if needed) the tree at opts.Root.
func Open(opts Options) (*Store, error) {
	if opts.Root == "" {
		return nil, fmt.Errorf("mailstore: Options.Root is empty")
	}
	root, err := filepath.Abs(opts.Root)
	if err != nil {
		return nil, fmt.Errorf("mailstore: root: %w", err)
	}
	s := &Store{
		opts: opts, log: opts.Logger, fs: opts.FS, root: root,
		tmpDir:   filepath.Join(root, tmpDirName),
		pid:      os.Getpid(),
		opened:   time.Now(),
		users:    make(map[string]*userState),
		indexes:  make(map[string]*index),
		dirSyncs: make(map[string]*dirSyncer),
		done:     make(chan struct{}),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.fs == nil {
		s.fs = osFS{}
	}
	if s.opts.QuotaGrace == 0 {
		s.opts.QuotaGrace = 0.1
	}
	if s.opts.PollInterval <= 0 {
		s.opts.PollInterval = time.Second
	}
	s.hostname = sanitizeHost(opts.Hostname)
	s.lockHost, _ = os.Hostname()
	// A random start for the Q counter keeps names unique even between two
	// Stores in one process (same PID, same microsecond).
	var seed [4]byte
	rand.Read(seed[:])
	s.seq.Store(uint64(binary.BigEndian.Uint32(seed[:])))
	if err := os.MkdirAll(s.tmpDir, 0o700); err != nil {
		return nil, fmt.Errorf("mailstore: open %s: %w", root, err)
	}
	s.cleanTmp()
	if u, ok := s.fs.(UnnamedFS); ok && s.probeUnnamed(u, s.tmpDir) {
		s.unnamed = u
		s.linkSync = linkNeedsInodeSync(s.tmpDir)
	}
	s.startFilePool()
	s.wg.Add(1)
	go s.pollLoop()
	return s, nil
}

// cleanTmp removes delivery temp files left by a crash: the maildir
// convention is that tmp/ files untouched for 36 hours are garbage.
func (s *Store) cleanTmp() {
	ents, err := os.ReadDir(s.tmpDir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() && time.Since(fi.ModTime()) > 36*time.Hour {
			os.Remove(filepath.Join(s.tmpDir, e.Name()))
		}
	}
}

// Close stops background work; open handles become unusable (ErrClosed).
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	users := s.users
	ixs := s.indexes
	s.mu.Unlock()
	s.wg.Wait()
	for _, ix := range ixs {
		ix.mu.Lock()
		ix.cache.closeFile()
		ix.mu.Unlock()
	}
	for _, u := range users {
		u.hub.closeAll()
	}
	return nil
}

func (s *Store) checkOpen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	return nil
}

// sanitizeHost makes a hostname safe for a maildir file name, escaping "/"
// and ":" the way Dovecot does (octal \057 and \072).
func sanitizeHost(h string) string {
	if h == "" {
		h, _ = os.Hostname()
	}
	if h == "" {
		h = "localhost"
	}
	var b []byte
	for i := 0; i < len(h); i++ {
		switch c := h[i]; {
		case c == '/':
			b = append(b, `\057`...)
		case c == ':':
			b = append(b, `\072`...)
		case c == ',':
			b = append(b, `\054`...)
		case c <= ' ' || c >= 0x7f:
			b = append(b, '_')
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

// newUIDValidity returns a UIDVALIDITY never handed out before by this
// process: the current time, bumped past the last one (RFC 3501 §2.3.1.1
// requires a fresh value whenever a name is reused).
func (s *Store) newUIDValidity() uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := uint32(time.Now().Unix())
	if v <= s.lastValid {
		v = s.lastValid + 1
	}
	s.lastValid = v
	return v
}

// index returns the shared index of the folder in dir, creating it.
func (s *Store) index(u *userState, name, dir string) *index {
	s.mu.Lock()
	defer s.mu.Unlock()
	ix := s.indexes[dir]
	if ix == nil {
		ix = &index{s: s, user: u.name, name: name, dir: dir}
		s.indexes[dir] = ix
	}
	return ix
}

// loadedIndex returns the index of dir if one exists, without creating.
func (s *Store) loadedIndex(dir string) *index {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.indexes[dir]
}

// dropIndexes marks indexes under dir (a folder being deleted or renamed)
// gone, so handles to them fail with ErrNoSuchFolder.
func (s *Store) dropIndexes(dirs ...string) {
	s.mu.Lock()
	var drop []*index
	for _, d := range dirs {
		if ix := s.indexes[d]; ix != nil {
			drop = append(drop, ix)
			delete(s.indexes, d)
		}
	}
	s.mu.Unlock()
	for _, ix := range drop {
		ix.mu.Lock()
		ix.gone = true
		ix.cache.closeFile()
		ix.mu.Unlock()
	}
}
