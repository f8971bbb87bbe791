package mailstore

// A few unnamed delivery files opened ahead of need, by one background
// goroutine: creating the inode is a delivery's costliest CPU step (ext4
// inode allocation; 0.1-0.4 ms on the reference VM), and done here it
// overlaps the fsync waits of deliveries in progress instead of adding to
// the next one's latency. An unnamed file that is never used costs nothing
// to drop, even in a crash: it has no name, and the kernel frees it.
//
// Only with the real file system: with a test FS (Options.FS) files are
// made on demand, so injected failures land where the tests expect them.

const filePoolSize = 4

type filePool struct {
	files chan File
	kick  chan struct{}
}

// startFilePool starts the filler if unnamed files are in use.
func (s *Store) startFilePool() {
	if s.unnamed == nil || s.opts.FS != nil {
		return
	}
	s.pool = &filePool{files: make(chan File, filePoolSize), kick: make(chan struct{}, 1)}
	s.wg.Add(1)
	go s.fillPool()
	s.pool.kick <- struct{}{}
}

func (s *Store) fillPool() {
	defer s.wg.Done()
	p := s.pool
	defer func() {
		for {
			select {
			case f := <-p.files:
				f.Close()
			default:
				return
			}
		}
	}()
	for {
		select {
		case <-s.done:
			return
		case <-p.kick:
		}
		for len(p.files) < cap(p.files) {
			f, err := s.unnamed.CreateUnnamed(s.tmpDir)
			if err != nil {
				// Deliveries create their own and report the error.
				s.log.Debug("mailstore: opening spare delivery file", "err", err)
				break
			}
			select {
			case p.files <- f:
			case <-s.done:
				f.Close()
				return
			}
		}
	}
}

// pooledFile returns a spare unnamed file if there is one, and asks for
// its replacement.
func (s *Store) pooledFile() File {
	p := s.pool
	if p == nil {
		return nil
	}
	var f File
	select {
	case f = <-p.files:
	default:
	}
	select {
	case p.kick <- struct{}{}:
	default:
	}
	return f
}
