package relay

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Queue is the outbound queue. New opens it; Start runs the delivery
// workers. A Queue that was never started still serves Enqueue and the
// admin functions, which is how the CLI edits a running server's queue.
type Queue struct {
	opts  Options
	spool *spool
	dns   string // resolver host:port
	log   *slog.Logger

	wake chan struct{} // buffered(1): rescan now

	mu       sync.Mutex
	started  bool
	closed   bool
	inflight map[string]bool
	bad      map[string]bool      // unreadable envelopes, logged once
	holdoff  map[string]time.Time // not before (after a local error)
	unsaved  map[string]*Envelope // outcomes a failed save left only here
	cancel   context.CancelFunc   // cancels deliveries in progress
	stop     chan struct{}        // closed to stop the scheduler
	done     chan struct{}        // closed when the scheduler has returned
	workers  sync.WaitGroup
}

// New opens the queue in opts.DataDir/queue, creating it if needed.
func New(opts Options) (*Queue, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	sp, err := openSpool(o.DataDir)
	if err != nil {
		return nil, err
	}
	return &Queue{
		opts:     o,
		spool:    sp,
		dns:      dnsServer(o.DNSServer),
		log:      o.Logger,
		wake:     make(chan struct{}, 1),
		inflight: map[string]bool{},
		bad:      map[string]bool{},
		holdoff:  map[string]time.Time{},
		unsaved:  map[string]*Envelope{},
	}, nil
}

// Start launches the scheduler and delivery workers. Messages left in the
// queue by an earlier run (or a crash) are picked up where they were.
func (q *Queue) Start() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return ErrClosed
	}
	if q.started {
		return errors.New("relay: already started")
	}
	if err := q.spool.cleanOrphans(); err != nil {
		return err
	}
	q.started = true
	ctx, cancel := context.WithCancel(context.Background())
	q.cancel = cancel
	q.stop = make(chan struct{})
	q.done = make(chan struct{})
	go q.schedule(ctx)
	return nil
}

// Close stops at once: deliveries in progress are cut off (their
// recipients stay pending and are retried after a restart).
func (q *Queue) Close() error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := q.Shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// Shutdown stops starting deliveries and waits for those in progress until
// ctx ends, then cuts them off and returns ctx's error.
func (q *Queue) Shutdown(ctx context.Context) error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil
	}
	q.closed = true
	started := q.started
	q.mu.Unlock()
	if !started {
		return nil
	}
	close(q.stop)
	<-q.done
	finished := make(chan struct{})
	go func() { q.workers.Wait(); close(finished) }()
	var err error
	select {
	case <-finished:
	default:
		select {
		case <-finished:
		case <-ctx.Done():
			q.cancel()
			<-finished
			err = ctx.Err()
		}
	}
	q.cancel()
	return err
}

// Enqueue stores a message for delivery and returns its queue ID once both
// its files are durable. from may be "" (a bounce); to must be non-empty.
// Line endings are normalised to CRLF.
func (q *Queue) Enqueue(ctx context.Context, from string, to []string, msg io.Reader) (string, error) {
	id := q.opts.NewID()
	if err := q.enqueueID(ctx, id, from, to, msg); err != nil {
		return "", err
	}
	q.poke()
	return id, nil
}

// enqueueID writes message and envelope under a given ID. An ID already
// taken fails with an error wrapping fs.ErrExist.
func (q *Queue) enqueueID(ctx context.Context, id, from string, to []string, msg io.Reader) error {
	if !ValidID(id) {
		return fmt.Errorf("relay: bad queue ID %q", id)
	}
	if from != "" {
		if err := checkAddr(from); err != nil {
			return fmt.Errorf("relay: sender: %w", err)
		}
	}
	if len(to) == 0 {
		return errors.New("relay: no recipients")
	}
	now := q.opts.Now()
	e := &Envelope{ID: id, From: from, Created: now, Next: now}
	for _, addr := range to {
		if err := checkAddr(addr); err != nil {
			return fmt.Errorf("relay: recipient: %w", err)
		}
		if e.recipient(addr) == nil {
			e.Recipients = append(e.Recipients, Recipient{Addr: addr, State: StatePending})
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	l, err := q.spool.create(id)
	if err != nil {
		return err
	}
	defer l.unlock()
	ok := false
	defer func() {
		if !ok {
			q.spool.remove(id)
		}
	}()
	if err := q.spool.aw.Write(q.spool.path(id, ".msg"), func(w io.Writer) error {
		return copyCRLF(w, msg)
	}); err != nil {
		return fmt.Errorf("relay: store message: %w", err)
	}
	if err := q.spool.writeEnvelope(e); err != nil {
		return err
	}
	ok = true
	q.log.Info("queued", "id", id, "from", from, "rcpts", len(e.Recipients))
	return nil
}

// copyCRLF copies r to w turning bare LF into CRLF.
func copyCRLF(w io.Writer, r io.Reader) error {
	br := bufio.NewReaderSize(r, 32<<10)
	bw := bufio.NewWriterSize(w, 32<<10)
	var prev byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(chunk) > 0 {
			if chunk[len(chunk)-1] == '\n' {
				body := chunk[:len(chunk)-1]
				last := prev
				if len(body) > 0 {
					last = body[len(body)-1]
				}
				bw.Write(body)
				if last != '\r' {
					bw.WriteByte('\r')
				}
				bw.WriteByte('\n')
				prev = '\n'
			} else {
				bw.Write(chunk)
				prev = chunk[len(chunk)-1]
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF {
			return bw.Flush()
		}
		if err != nil {
			return err
		}
	}
}

// poke wakes this process's scheduler.
func (q *Queue) poke() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// newID is the default queue ID: sortable time, then randomness.
func newID() string {
	var b [6]byte
	rand.Read(b[:])
	return strings.ToUpper(fmt.Sprintf("%x", time.Now().UTC().UnixMicro())) + "-" + hex.EncodeToString(b[:])
}
