package relay

// Admin functions. They work on the files under the message's lock, so
// they are safe beside a server running in another process; they then
// touch .wake so that server rescans within Options.WakePoll.

import (
	"errors"
	"fmt"
	"os"
	"time"
)

// adminLockWait is how long an admin call waits for a message's lock
// before reporting ErrBusy (a delivery holds it for its whole attempt).
const adminLockWait = 2 * time.Second

// Info describes a queued message.
type Info struct {
	Envelope
	Size   int64  // bytes of the message file
	Header string // Show only: the message's header section
}

// List returns every queued message (failed/ excluded), oldest ID first.
// Messages whose envelope cannot be read are skipped.
func (q *Queue) List() ([]Info, error) {
	ids, err := q.spool.ids()
	if err != nil {
		return nil, err
	}
	var out []Info
	for _, id := range ids {
		e, err := q.spool.readEnvelope(id)
		if err != nil {
			continue // delivered meanwhile, or unreadable (the server logs it)
		}
		out = append(out, Info{Envelope: *e, Size: q.size(id)})
	}
	return out, nil
}

// Show returns one queued message with its header section.
func (q *Queue) Show(id string) (Info, error) {
	if !ValidID(id) {
		return Info{}, ErrNotFound
	}
	e, err := q.spool.readEnvelope(id)
	if err != nil {
		return Info{}, err
	}
	hdr, err := readHeader(q.spool.path(id, ".msg"))
	if err != nil {
		return Info{}, err
	}
	return Info{Envelope: *e, Size: q.size(id), Header: string(hdr)}, nil
}

func (q *Queue) size(id string) int64 {
	fi, err := os.Stat(q.spool.path(id, ".msg"))
	if err != nil {
		return -1
	}
	return fi.Size()
}

// Retry makes a message due now. ErrBusy means it is being delivered.
func (q *Queue) Retry(id string) error {
	return q.edit(id, func(e *Envelope) { e.Next = q.opts.Now() })
}

// Flush makes every queued message due now and returns how many it
// changed; those being delivered at the moment are skipped.
func (q *Queue) Flush() (int, error) {
	ids, err := q.spool.ids()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		err := q.edit(id, func(e *Envelope) { e.Next = q.opts.Now() })
		switch {
		case err == nil:
			n++
		case errors.Is(err, ErrBusy), errors.Is(err, ErrNotFound):
		default:
			return n, err
		}
	}
	return n, nil
}

// Bounce gives up on a message's pending recipients now: the sender gets a
// DSN and the message moves to failed/ on the next pass of the workers.
func (q *Queue) Bounce(id string) error {
	return q.edit(id, func(e *Envelope) {
		now := q.opts.Now()
		for i := range e.Recipients {
			if r := &e.Recipients[i]; r.State == StatePending {
				r.State, r.Status, r.Updated = StateFailed, "5.0.0", now
				r.Diagnostic = "x-mailsuite; delivery cancelled by the administrator"
			}
		}
		e.Next = now
	})
}

// Delete removes a message from the queue without notifying anyone.
func (q *Queue) Delete(id string) error {
	l, err := q.spool.lock(id, adminLockWait)
	if err != nil {
		return err
	}
	defer l.unlock()
	if err := q.spool.remove(id); err != nil {
		return err
	}
	q.log.Info("deleted by admin", "id", id)
	return nil
}

// edit changes an envelope under its lock and wakes the scheduler.
func (q *Queue) edit(id string, change func(*Envelope)) error {
	l, err := q.spool.lock(id, adminLockWait)
	if err != nil {
		return err
	}
	e, err := q.spool.readEnvelope(id)
	if err == nil {
		change(e)
		err = q.spool.writeEnvelope(e)
	}
	l.unlock()
	if err != nil {
		return err
	}
	q.poke()
	if err := q.spool.touchWake(); err != nil {
		return fmt.Errorf("relay: %s changed, but waking the server failed: %w", id, err)
	}
	return nil
}
