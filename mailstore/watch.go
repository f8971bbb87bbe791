package mailstore

// Change notifications. Publishing never blocks the store: each watcher has
// a queue that a goroutine drains into its channel; queued events for the
// same folder and kind are merged, and a queue that grows too long
// collapses to UID-less events ("sync and compare").

import (
	"slices"
	"sync"
)

const maxQueued = 64

type watcher struct {
	mu      sync.Mutex
	queue   []Event
	wake    chan struct{}
	out     chan Event
	stop    chan struct{}
	stopped bool
}

type hub struct {
	mu       sync.Mutex
	watchers map[*watcher]struct{}
}

func (h *hub) init() { h.watchers = make(map[*watcher]struct{}) }

func (h *hub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.watchers)
}

func (h *hub) publish(ev Event) {
	h.mu.Lock()
	ws := make([]*watcher, 0, len(h.watchers))
	for w := range h.watchers {
		ws = append(ws, w)
	}
	h.mu.Unlock()
	for _, w := range ws {
		w.push(ev)
	}
}

func (h *hub) closeAll() {
	h.mu.Lock()
	ws := h.watchers
	h.watchers = make(map[*watcher]struct{})
	h.mu.Unlock()
	for w := range ws {
		w.close()
	}
}

func (w *watcher) push(ev Event) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return
	}
	ev.UIDs = slices.Clone(ev.UIDs)
	merged := false
	for i := range w.queue {
		q := &w.queue[i]
		if q.Folder == ev.Folder && q.Kind == ev.Kind {
			if len(q.UIDs) == 0 || len(ev.UIDs) == 0 {
				q.UIDs = nil // one of them says "sync and compare"
			} else {
				q.UIDs = append(q.UIDs, ev.UIDs...)
			}
			merged = true
			break
		}
	}
	if !merged {
		if len(w.queue) >= maxQueued {
			for i := range w.queue {
				w.queue[i].UIDs = nil
			}
			w.queue = append(w.queue[:0], Event{User: ev.User, Folder: ev.Folder, Kind: ev.Kind})
		} else {
			w.queue = append(w.queue, ev)
		}
	}
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *watcher) run() {
	defer close(w.out)
	for {
		select {
		case <-w.stop:
			return
		case <-w.wake:
		}
		for {
			w.mu.Lock()
			if len(w.queue) == 0 {
				w.mu.Unlock()
				break
			}
			ev := w.queue[0]
			w.queue = w.queue[1:]
			w.mu.Unlock()
			select {
			case w.out <- ev:
			case <-w.stop:
				return
			}
		}
	}
}

func (w *watcher) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped {
		w.stopped = true
		close(w.stop)
	}
}

// Watch subscribes to events for all of the user's folders. Events are
// coalesced, never block the store, and stop when cancel is called (the
// channel is then closed).
func (u *User) Watch() (events <-chan Event, cancel func()) {
	w := &watcher{wake: make(chan struct{}, 1), out: make(chan Event), stop: make(chan struct{})}
	h := &u.st.hub
	h.mu.Lock()
	h.watchers[w] = struct{}{}
	h.mu.Unlock()
	go w.run()
	if u.s.checkOpen() != nil {
		w.close()
	}
	return w.out, func() {
		h.mu.Lock()
		delete(h.watchers, w)
		h.mu.Unlock()
		w.close()
	}
}

// notifyDiff tells watchers what a sync found that others changed.
func (s *Store) notifyDiff(user, folder string, d syncDiff) {
	s.mu.Lock()
	st := s.users[user]
	s.mu.Unlock()
	if st == nil {
		return
	}
	if len(d.added) > 0 {
		st.hub.publish(Event{User: user, Folder: folder, Kind: EventAdded, UIDs: d.added})
	}
	if len(d.flagged) > 0 {
		st.hub.publish(Event{User: user, Folder: folder, Kind: EventFlags, UIDs: d.flagged})
	}
	if len(d.expunged) > 0 {
		st.hub.publish(Event{User: user, Folder: folder, Kind: EventExpunge, UIDs: d.expunged})
	}
}
