// Package authlimit throttles authentication failures per client IP, shared
// by the SMTP, POP3 and IMAP servers so a password guesser cannot move from
// one protocol to another to dodge it.
//
// It owns only the bookkeeping: callers ask Check before verifying
// credentials, sleep for the wait it returns (or refuse when locked out),
// and report the outcome with Failed or Succeeded. It never sleeps itself.
//
// IPv6 clients are counted per /64, the block one host or subscriber
// usually controls; otherwise one machine could rotate addresses forever.
package authlimit

import (
	"net"
	"sync"
	"time"
)

// Options tune the limiter. Zero values take the defaults in New.
type Options struct {
	// FreeFailures is how many failures an IP gets before delays start (default 3).
	// Negative means none.
	FreeFailures int
	// Delay is the delay after each failure beyond FreeFailures, doubled each
	// time up to MaxDelay (defaults 1s and 8s).
	Delay, MaxDelay time.Duration
	// LockoutFailures failures within Window refuse the IP outright until
	// Window passes since the last failure (defaults 10 and 15m).
	// Negative means never lock out.
	LockoutFailures int
	Window          time.Duration
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
	// MaxEntries caps how many IPs are tracked at once (default 65536), so
	// a flood from many addresses cannot grow memory without bound. When
	// full, expired entries go first, then the stalest of a few others.
	MaxEntries int
}

// Limiter is safe for concurrent use.
type Limiter struct {
	opts Options

	mu        sync.Mutex
	entries   map[string]*entry
	lastSweep time.Time
}

// entry is one IP's run of failures: each failure less than Window after
// the previous one extends the run; a longer pause starts afresh.
type entry struct {
	failures int
	last     time.Time
}

// evictSample is how many entries are looked at to pick one to evict when
// the table is full and nothing has expired: enough to avoid evicting an
// active attacker most of the time, few enough to stay O(1).
const evictSample = 16

// New returns a limiter.
func New(opts Options) *Limiter {
	if opts.FreeFailures == 0 {
		opts.FreeFailures = 3
	} else if opts.FreeFailures < 0 {
		opts.FreeFailures = 0
	}
	if opts.Delay <= 0 {
		opts.Delay = time.Second
	}
	if opts.MaxDelay <= 0 {
		opts.MaxDelay = 8 * time.Second
	}
	if opts.LockoutFailures == 0 {
		opts.LockoutFailures = 10
	}
	if opts.Window <= 0 {
		opts.Window = 15 * time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = 65536
	}
	return &Limiter{opts: opts, entries: make(map[string]*entry)}
}

// Check is called before verifying credentials from ip. It returns how long
// the caller should wait before answering, and ok=false when the IP is
// locked out (answer with a temporary refusal without checking).
func (l *Limiter) Check(ip net.IP) (wait time.Duration, ok bool) {
	k := key(ip)
	now := l.opts.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.entries[k]
	if e == nil {
		return 0, true
	}
	if l.expired(e, now) {
		delete(l.entries, k)
		return 0, true
	}
	if l.opts.LockoutFailures > 0 && e.failures >= l.opts.LockoutFailures {
		return 0, false
	}
	return l.delay(e.failures), true
}

// delay is Delay doubled for each failure past the free ones, capped.
func (l *Limiter) delay(failures int) time.Duration {
	extra := failures - l.opts.FreeFailures
	if extra <= 0 {
		return 0
	}
	d := l.opts.Delay
	for i := 1; i < extra && d < l.opts.MaxDelay; i++ {
		d *= 2
	}
	return min(d, l.opts.MaxDelay)
}

// Failed records a failed attempt from ip.
func (l *Limiter) Failed(ip net.IP) {
	k := key(ip)
	now := l.opts.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.maybeSweep(now)
	e := l.entries[k]
	if e != nil && l.expired(e, now) {
		e.failures = 0
	}
	if e == nil {
		if len(l.entries) >= l.opts.MaxEntries {
			l.makeRoom()
		}
		e = &entry{}
		l.entries[k] = e
	}
	e.failures++
	e.last = now
}

// Succeeded clears ip's failures.
func (l *Limiter) Succeeded(ip net.IP) {
	k := key(ip)
	l.mu.Lock()
	delete(l.entries, k)
	l.mu.Unlock()
}

func (l *Limiter) expired(e *entry, now time.Time) bool {
	return now.Sub(e.last) >= l.opts.Window
}

// maybeSweep drops expired entries at most once per Window, so the cost is
// spread over many calls and stale entries never outlive two Windows.
func (l *Limiter) maybeSweep(now time.Time) {
	if now.Sub(l.lastSweep) < l.opts.Window {
		return
	}
	l.lastSweep = now
	l.sweep(now)
}

func (l *Limiter) sweep(now time.Time) {
	for k, e := range l.entries {
		if l.expired(e, now) {
			delete(l.entries, k)
		}
	}
}

// makeRoom frees one slot: the stalest of a sample (map iteration order is
// randomised). It does not sweep: under a flood from new addresses a full
// scan per failure would be quadratic; maybeSweep bounds staleness instead.
func (l *Limiter) makeRoom() {
	var victim string
	var oldest time.Time
	n := 0
	for k, e := range l.entries {
		if n == 0 || e.last.Before(oldest) {
			victim, oldest = k, e.last
		}
		if n++; n == evictSample {
			break
		}
	}
	delete(l.entries, victim)
}

// key is the bucket for ip: the IPv4 address, or the IPv6 /64.
func key(ip net.IP) string {
	if v4 := ip.To4(); v4 != nil {
		return string(v4)
	}
	if len(ip) == net.IPv6len {
		return string(ip[:8])
	}
	return "" // not an IP: all such callers share one bucket
}
