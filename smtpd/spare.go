package smtpd

import (
	"github.com/mailsuite/mailsuite/mailstore"
)

// A spare delivery is a mailstore.Delivery opened in the background as
// soon as a transaction has its first local recipient, so that creating
// the temp file (an fsync-heavy file system's slow step, about a third of
// a delivery's time here) overlaps the RCPT/DATA round trips instead of
// adding to the wait for the final 250. It is used by the next Data, kept
// across RSET, and aborted (temp file removed) at Logout.
type spareDelivery struct {
	ready chan struct{}
	d     *mailstore.Delivery
	err   error
}

// prepareDelivery starts opening a spare delivery if there is none.
func (s *session) prepareDelivery() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.spare != nil || s.closed {
		return
	}
	sp := &spareDelivery{ready: make(chan struct{})}
	s.spare = sp
	go func() {
		sp.d, sp.err = s.srv.opts.Store.BeginDelivery()
		close(sp.ready)
	}()
}

// takeDelivery returns the spare delivery, or opens one now.
func (s *session) takeDelivery() (*mailstore.Delivery, error) {
	s.mu.Lock()
	sp := s.spare
	s.spare = nil
	s.mu.Unlock()
	if sp == nil {
		return s.srv.opts.Store.BeginDelivery()
	}
	<-sp.ready
	return sp.d, sp.err
}

// dropSpare aborts an unused spare delivery; later prepares do nothing.
func (s *session) dropSpare() {
	s.mu.Lock()
	sp := s.spare
	s.spare = nil
	s.closed = true
	s.mu.Unlock()
	if sp != nil {
		go func() {
			<-sp.ready
			if sp.d != nil {
				sp.d.Abort()
			}
		}()
	}
}
