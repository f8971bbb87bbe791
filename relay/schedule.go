package relay

import (
	"context"
	"time"
)

// schedule runs until Shutdown: it scans the queue, hands due messages to
// at most Workers goroutines, and sleeps until the next message is due, a
// worker finishes, Enqueue or an admin call pokes it, the .wake file
// changes (admin CLI in another process) or ScanInterval passes.
func (q *Queue) schedule(ctx context.Context) {
	defer close(q.done)
	sem := make(chan struct{}, q.opts.Workers)
	stamp := q.spool.wakeStamp()
	poll := time.NewTicker(q.opts.WakePoll)
	defer poll.Stop()
	for {
		wait := q.opts.ScanInterval
		if next := q.dispatch(ctx, sem); !next.IsZero() {
			wait = min(wait, max(next.Sub(q.opts.Now()), time.Millisecond))
		}
		timer := time.NewTimer(wait)
	sleep:
		for {
			select {
			case <-q.stop:
				timer.Stop()
				return
			case <-q.wake:
				break sleep
			case <-timer.C:
				break sleep
			case <-poll.C:
				if s := q.spool.wakeStamp(); !s.Equal(stamp) {
					stamp = s
					break sleep
				}
			}
		}
		timer.Stop()
	}
}

// dispatch starts workers for due messages and returns the earliest time a
// not-yet-due message becomes due (zero if none).
func (q *Queue) dispatch(ctx context.Context, sem chan struct{}) time.Time {
	ids, err := q.spool.ids()
	if err != nil {
		q.log.Error("scan queue", "err", err)
		return time.Time{}
	}
	now := q.opts.Now()
	var next time.Time
	for _, id := range ids {
		q.mu.Lock()
		busy := q.inflight[id]
		if until, ok := q.holdoff[id]; ok && !busy {
			if time.Now().Before(until) {
				busy = true
			} else {
				delete(q.holdoff, id)
			}
		}
		q.mu.Unlock()
		if busy {
			continue
		}
		e, err := q.spool.readEnvelope(id)
		if err != nil {
			q.mu.Lock()
			first := !q.bad[id]
			q.bad[id] = true
			q.mu.Unlock()
			if first && err != ErrNotFound {
				q.log.Error("unreadable envelope left in queue", "id", id, "err", err)
			}
			continue
		}
		if e.Next.After(now) {
			if next.IsZero() || e.Next.Before(next) {
				next = e.Next
			}
			continue
		}
		select {
		case sem <- struct{}{}:
		default:
			return next // all workers busy; a finishing one pokes us
		}
		q.mu.Lock()
		q.inflight[id] = true
		delete(q.bad, id)
		q.mu.Unlock()
		q.workers.Add(1)
		go func() {
			defer q.workers.Done()
			res := q.process(ctx, id)
			if res == resBusy {
				// An admin call holds the lock for a moment: don't
				// spin on it.
				time.Sleep(50 * time.Millisecond)
			}
			q.mu.Lock()
			delete(q.inflight, id)
			if res == resFailed {
				// Its envelope still says "due": without this the
				// scheduler would retry a failing disk in a tight loop.
				q.holdoff[id] = time.Now().Add(q.opts.retryDelay(1))
			}
			q.mu.Unlock()
			<-sem
			q.poke()
		}()
	}
	return next
}
