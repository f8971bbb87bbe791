package smtpd

import (
	"errors"
	"io"
	"time"
)

// go-smtp v0.25.1 runs Data for BDAT on a goroutine that, after Data
// returns, sends the result on the connection's dataResult channel and
// then closes the pipe reader. It reads that channel field only at the
// send, so when a transfer is cut short (RSET, size limit) and the client
// at once starts a new BDAT transfer, the old goroutine's error can land in
// the new transfer's channel: the new message is stored but answered 451,
// and the client's retry duplicates it. To keep the old result where it
// belongs, Reset waits until the old goroutine is done: Data has returned
// and go-smtp has closed the pipe reader, which it does right after the
// send.

// bdatWait bounds the wait; the steps above take microseconds.
const bdatWait = 5 * time.Second

// beginBDAT records a BDAT transfer's pipe and returns the func Data calls
// when it returns.
func (s *session) beginBDAT(r *io.PipeReader) (finished func()) {
	done := make(chan struct{})
	s.mu.Lock()
	s.bdatPipe, s.bdatDone = r, done
	s.mu.Unlock()
	return func() { close(done) }
}

// waitBDAT waits for an earlier BDAT transfer's goroutine to be done.
func (s *session) waitBDAT() {
	s.mu.Lock()
	r, done := s.bdatPipe, s.bdatDone
	s.bdatPipe, s.bdatDone = nil, nil
	s.mu.Unlock()
	if r == nil {
		return
	}
	deadline := time.NewTimer(bdatWait)
	defer deadline.Stop()
	select {
	case <-done:
	case <-deadline.C:
		return
	}
	for {
		// A pipe reader closed by its own side reads ErrClosedPipe; before
		// that it reads the writer's error (smtp.ErrDataReset or EOF).
		if _, err := r.Read(nil); errors.Is(err, io.ErrClosedPipe) {
			return
		}
		select {
		case <-deadline.C:
			return
		case <-time.After(20 * time.Microsecond):
		}
	}
}
