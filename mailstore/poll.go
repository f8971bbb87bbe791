package mailstore

// The poller notices changes other processes make to folders that have
// watchers: for every watched user, every PollInterval, it re-syncs INBOX
// and each folder whose index is loaded (cheap when nothing changed: three
// stats), and the sync publishes what it found.

import (
	"strings"
	"time"
)

func (s *Store) pollLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.opts.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
			s.pollOnce()
		}
	}
}

func (s *Store) pollOnce() {
	s.mu.Lock()
	var watched []*userState
	for _, st := range s.users {
		if st.hub.count() > 0 {
			watched = append(watched, st)
		}
	}
	var ixs []*index
	for _, st := range watched {
		inbox := s.indexes[st.dir]
		if inbox == nil {
			inbox = &index{s: s, user: st.name, name: Inbox, dir: st.dir}
			s.indexes[st.dir] = inbox
		}
		for dir, ix := range s.indexes {
			if ix.user == st.name && (dir == st.dir || strings.HasPrefix(dir, st.dir+"/")) {
				ixs = append(ixs, ix)
			}
		}
	}
	s.mu.Unlock()
	for _, ix := range ixs {
		ix.mu.Lock()
		var err error
		if !ix.loaded {
			err = ix.ensureLoaded()
		} else if !ix.gone {
			_, err = ix.syncLocked(false, true)
		}
		ix.mu.Unlock()
		if err != nil {
			s.log.Debug("mailstore: poll", "user", ix.user, "folder", ix.name, "err", err)
		}
	}
}
