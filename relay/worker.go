package relay

// Invariants: a worker holds the message's lock from before it reads the
// envelope until after its last write; it saves the envelope after every
// SMTP transaction (or local delivery) and before starting the next,
// so per-recipient state on disk is never behind a remote's 250 by more
// than one fsync.

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// outcome is what one attempt did for one recipient.
type outcome struct {
	state  State // StatePending means a temporary failure
	status string
	remote string
	diag   string
	tls    string
}

// group is the recipients delivered in one go.
type group struct {
	domain string // "" with a smarthost
	local  bool   // via Options.DeliverLocal
	rcpts  []string
}

// result is how process went, for the scheduler.
type result int

const (
	resDone   result = iota // attempted (or nothing to do)
	resBusy                 // an admin call held the lock: try again soon
	resFailed               // a local error (disk, lock): hold off a while
)

// process makes one delivery attempt of a due message.
func (q *Queue) process(ctx context.Context, id string) result {
	l, err := q.spool.lock(id, 0)
	switch {
	case errors.Is(err, ErrBusy):
		return resBusy
	case errors.Is(err, ErrNotFound):
		return resDone
	case err != nil:
		q.log.Error("lock queued message", "id", id, "err", err)
		return resFailed
	}
	defer l.unlock()
	e, err := q.spool.readEnvelope(id)
	if err != nil {
		q.log.Error("read envelope", "id", id, "err", err)
		return resFailed
	}
	if !q.saveRemembered(e) {
		return resFailed
	}
	if e.Next.After(q.opts.Now()) {
		return resDone // postponed by an admin since the scan
	}
	if _, err := os.Stat(q.spool.path(id, ".msg")); errors.Is(err, fs.ErrNotExist) {
		// A crash in the middle of moveToFailed (message moved, envelope
		// not yet), or a message file removed by hand: finish the move.
		q.log.Error("queued message has no message file; moving its envelope to failed/", "id", id)
		if err := q.spool.moveToFailed(id); err != nil {
			q.log.Error("move to failed", "id", id, "err", err)
			return resFailed
		}
		return resDone
	}
	if err := q.attempt(ctx, e); err != nil {
		q.log.Error("delivery attempt", "id", id, "err", err)
		q.remember(e)
		return resFailed
	}
	if ctx.Err() != nil {
		return resDone // cut off by Close: untried recipients stay as they were
	}
	if err := q.finish(ctx, e); err != nil {
		q.log.Error("finish delivery attempt", "id", id, "err", err)
		return resFailed
	}
	return resDone
}

// attempt tries every pending recipient once, saving after each group.
func (q *Queue) attempt(ctx context.Context, e *Envelope) error {
	pending := e.Pending()
	if len(pending) == 0 {
		return nil
	}
	msg := &message{q: q, path: q.spool.path(e.ID, ".msg")}
	for _, g := range q.groups(pending) {
		for len(g.rcpts) > 0 && ctx.Err() == nil {
			var res map[string]outcome
			if g.local {
				res = q.deliverLocal(ctx, e, g.rcpts, msg)
			} else {
				res = q.deliverRemote(ctx, e, g, msg)
			}
			if err := q.record(ctx, e, res); err != nil {
				return err
			}
			// A transaction cut short by 452 leaves recipients for the
			// next one; each transaction answers at least one, so this
			// ends.
			rest := unanswered(g.rcpts, res)
			if len(rest) == len(g.rcpts) {
				break
			}
			g.rcpts = rest
		}
	}
	if ctx.Err() == nil {
		e.Attempts++
		e.LastAttempt = q.opts.Now()
	}
	return nil
}

// remember keeps the outcomes of an attempt whose save failed (disk full),
// so that the next attempt does not send again to recipients a remote has
// already accepted. It lasts as long as the process; after a restart
// the unavoidable RFC 1047 window applies.
func (q *Queue) remember(e *Envelope) {
	q.mu.Lock()
	q.unsaved[e.ID] = e
	q.mu.Unlock()
}

// saveRemembered merges remembered outcomes into e, just read from disk
// under the lock, and saves it. Only recipients still pending on disk
// take the remembered state, so admin edits made meanwhile stand. It
// reports false (and remembers again) if the save fails.
func (q *Queue) saveRemembered(e *Envelope) bool {
	q.mu.Lock()
	prev := q.unsaved[e.ID]
	delete(q.unsaved, e.ID)
	q.mu.Unlock()
	if prev == nil {
		return true
	}
	for _, r := range prev.Recipients {
		if d := e.recipient(r.Addr); d != nil && d.State == StatePending && r.State != StatePending {
			*d = r
		}
	}
	if err := q.spool.writeEnvelope(e); err != nil {
		q.log.Error("save remembered delivery state", "id", e.ID, "err", err)
		q.remember(e)
		return false
	}
	return true
}

// record applies one transaction's outcomes and saves the envelope before
// anything else is sent.
func (q *Queue) record(ctx context.Context, e *Envelope, res map[string]outcome) error {
	now := q.opts.Now()
	cut := ctx.Err() != nil
	for addr, o := range res {
		r := e.recipient(addr)
		if r == nil || (cut && o.state == StatePending) {
			continue // a cut-off attempt is no attempt
		}
		if !validStatus(o.status) {
			// Defence in depth: what the envelope parser refuses must
			// never be saved, or the message is stuck for good.
			switch o.state {
			case StateDelivered:
				o.status = "2.0.0"
			case StateFailed:
				o.status = "5.0.0"
			default:
				o.status = "4.0.0"
			}
		}
		r.State, r.Status, r.RemoteMTA, r.Diagnostic, r.TLS, r.Updated = o.state, o.status, oneLine(o.remote), oneLine(o.diag), o.tls, now
		q.log.Info("delivery", "id", e.ID, "rcpt", addr, "state", o.state, "status", o.status, "remote", o.remote, "tls", o.tls, "diag", o.diag)
	}
	return q.spool.writeEnvelope(e)
}

// groups splits recipients: local ones (if DeliverLocal is set), then by
// destination domain, or all remote ones together for a smarthost.
func (q *Queue) groups(rcpts []string) []group {
	byDomain := map[string][]string{}
	var local []string
	for _, a := range rcpts {
		d := strings.ToLower(a[strings.LastIndexByte(a, '@')+1:])
		switch {
		case q.opts.DeliverLocal != nil && q.opts.isLocal(d):
			local = append(local, a)
		case q.opts.Smarthost != "":
			byDomain[""] = append(byDomain[""], a)
		default:
			byDomain[d] = append(byDomain[d], a)
		}
	}
	var out []group
	if len(local) > 0 {
		out = append(out, group{local: true, rcpts: local})
	}
	domains := make([]string, 0, len(byDomain))
	for d := range byDomain {
		domains = append(domains, d)
	}
	sort.Strings(domains)
	for _, d := range domains {
		out = append(out, group{domain: d, rcpts: byDomain[d]})
	}
	return out
}

func (q *Queue) deliverLocal(ctx context.Context, e *Envelope, rcpts []string, msg *message) map[string]outcome {
	res := map[string]outcome{}
	data, err := os.ReadFile(msg.path)
	if err == nil {
		err = q.opts.DeliverLocal(ctx, e.From, rcpts, data)
	}
	o := outcome{state: StateDelivered, status: "2.0.0", remote: q.opts.Hostname}
	if err != nil {
		o = outcome{state: StatePending, status: "4.0.0", remote: q.opts.Hostname, diag: "x-mailsuite; local delivery: " + oneLine(err.Error())}
		// Only Permanent fails for good: syscall.Errno also has a
		// Temporary method, false for ENOSPC and EIO, which are not final.
		if errors.As(err, new(permanentError)) {
			o.state, o.status = StateFailed, "5.0.0"
		}
	}
	for _, a := range rcpts {
		res[a] = o
	}
	return res
}

// finish schedules the next try, gives up on expired messages, sends the
// DSNs due, and retires a message with nothing left to do.
func (q *Queue) finish(ctx context.Context, e *Envelope) error {
	now := q.opts.Now()
	pending := e.Pending()
	if len(pending) > 0 {
		if now.Sub(e.Created) >= q.opts.MaxAge {
			for i := range e.Recipients {
				if r := &e.Recipients[i]; r.State == StatePending {
					// RFC 3463 §3.5: 5.4.7 delivery time expired.
					r.State, r.Status, r.Updated = StateFailed, "5.4.7", now
					if r.Diagnostic == "" {
						r.Diagnostic = "x-mailsuite; gave up after " + q.opts.MaxAge.String()
					}
				}
			}
			pending = nil
		} else {
			e.Next = now.Add(q.opts.retryDelay(e.Attempts))
		}
	}
	var failed, delayed []Recipient
	for _, r := range e.Recipients {
		if r.State == StateFailed && !r.Notified {
			failed = append(failed, r)
		}
		if r.State == StatePending {
			delayed = append(delayed, r)
		}
	}
	unreported := false
	if len(failed) > 0 {
		if err := q.report(ctx, e, failed, actionFailed); err != nil {
			q.log.Error("queue bounce", "id", e.ID, "err", err)
			unreported = true
		} else {
			for _, f := range failed {
				e.recipient(f.Addr).Notified = true
			}
		}
	}
	if q.opts.DelayWarning > 0 && !e.Warned && len(delayed) > 0 && now.Sub(e.Created) >= q.opts.DelayWarning {
		if err := q.report(ctx, e, delayed, actionDelayed); err != nil {
			q.log.Error("queue delay warning", "id", e.ID, "err", err)
		} else {
			e.Warned = true
		}
	}
	if len(pending) == 0 && unreported {
		e.Next = now.Add(q.opts.retryDelay(1))
	}
	if err := q.spool.writeEnvelope(e); err != nil {
		return err
	}
	if len(pending) > 0 || unreported {
		return nil
	}
	for _, r := range e.Recipients {
		if r.State == StateFailed {
			q.log.Warn("message failed", "id", e.ID, "from", e.From)
			return q.spool.moveToFailed(e.ID)
		}
	}
	q.log.Info("message delivered", "id", e.ID)
	return q.spool.remove(e.ID)
}

// report queues a DSN about rcpts to the sender, unless the message is
// itself a bounce (RFC 3464 §2: never a DSN about a DSN's failure). Its ID
// is derived from the message's, so a retry after a crash between queueing
// the DSN and saving the envelope finds it already there.
func (q *Queue) report(ctx context.Context, e *Envelope, rcpts []Recipient, action string) error {
	if e.From == "" {
		q.log.Warn("bounce not sent: the failed message is itself a bounce", "id", e.ID)
		return nil
	}
	n := e.Bounces + 1
	id := e.ID + ".b" + strconv.Itoa(n)
	if !ValidID(id) {
		id = q.opts.NewID()
	}
	hdr, err := readHeader(q.spool.path(e.ID, ".msg"))
	if err != nil {
		return err
	}
	data := buildDSN(dsnInput{
		ID:         id,
		Hostname:   q.opts.Hostname,
		Postmaster: q.opts.postmaster(),
		Env:        e,
		Recipients: rcpts,
		Action:     action,
		RetryUntil: e.Created.Add(q.opts.MaxAge),
		Now:        q.opts.Now(),
		Header:     hdr,
	})
	err = q.enqueueID(ctx, id, "", []string{e.From}, bytes.NewReader(data))
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	e.Bounces = n
	q.poke()
	return nil
}

// Permanent marks an error of Options.DeliverLocal as permanent (say, the
// local sender no longer exists), so the recipient fails at once instead
// of being retried until MaxAge. Errors are temporary otherwise.
func Permanent(err error) error { return permanentError{err} }

type permanentError struct{ err error }

func (p permanentError) Error() string   { return p.err.Error() }
func (p permanentError) Unwrap() error   { return p.err }
func (p permanentError) Temporary() bool { return false }

// oneLine folds a multi-line reply into one line for a DSN field, and
// makes foreign text (a remote's reply, an error message) safe to store
// and print: invalid UTF-8, control characters (C0, DEL, C1) and U+FFFD
// become '?'. The envelope parser refuses such characters, so one odd
// reply must never reach the envelope file.
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
			return ' '
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == utf8.RuneError:
			return '?'
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
	return strings.Join(strings.Fields(s), " ")
}
