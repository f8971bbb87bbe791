package authlimit

import (
	"fmt"
	"net"
	"sync"
	"testing"
	"time"
)

// clock is a manual clock for Options.Now.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newTest(opts Options) (*Limiter, *clock) {
	c := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	opts.Now = c.Now
	return New(opts), c
}

var ip1 = net.ParseIP("192.0.2.1")

func check(t *testing.T, l *Limiter, ip net.IP, wantWait time.Duration, wantOK bool) {
	t.Helper()
	if wait, ok := l.Check(ip); wait != wantWait || ok != wantOK {
		t.Fatalf("Check(%v) = %v, %v; want %v, %v", ip, wait, ok, wantWait, wantOK)
	}
}

// The default schedule: 3 free failures, then 1s, 2s, 4s, 8s, 8s, 8s, and
// locked out at the 10th failure.
func TestDefaultSchedule(t *testing.T) {
	l, _ := newTest(Options{})
	want := []time.Duration{0, 0, 0, 0, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second, 8 * time.Second}
	for failures, w := range want {
		check(t, l, ip1, w, true)
		if failures < len(want)-1 {
			l.Failed(ip1)
		}
	}
	l.Failed(ip1) // the 10th
	check(t, l, ip1, 0, false)
}

func TestLockoutEndsAfterWindow(t *testing.T) {
	l, c := newTest(Options{FreeFailures: 1, LockoutFailures: 3, Window: time.Minute})
	for range 3 {
		l.Failed(ip1)
		c.Advance(50 * time.Second) // each failure within Window of the previous
	}
	check(t, l, ip1, 0, false)
	c.Advance(9 * time.Second) // 59s since the last failure
	check(t, l, ip1, 0, false)
	c.Advance(time.Second)
	check(t, l, ip1, 0, true)
	// The slate is clean: the next failure is a first failure.
	l.Failed(ip1)
	check(t, l, ip1, 0, true)
}

func TestOldFailuresExpire(t *testing.T) {
	l, c := newTest(Options{FreeFailures: 2, Window: time.Minute})
	l.Failed(ip1)
	l.Failed(ip1)
	l.Failed(ip1)
	check(t, l, ip1, time.Second, true)
	c.Advance(time.Minute)
	l.Failed(ip1) // a run starts afresh after a quiet Window
	check(t, l, ip1, 0, true)
}

func TestSucceededClears(t *testing.T) {
	l, _ := newTest(Options{})
	for range 9 {
		l.Failed(ip1)
	}
	check(t, l, ip1, 8*time.Second, true)
	l.Succeeded(ip1)
	check(t, l, ip1, 0, true)
	if len(l.entries) != 0 {
		t.Fatalf("%d entries after success", len(l.entries))
	}
}

func TestPerIP(t *testing.T) {
	l, _ := newTest(Options{FreeFailures: -1, LockoutFailures: 2})
	a, b := net.ParseIP("198.51.100.7"), net.ParseIP("198.51.100.8")
	l.Failed(a)
	check(t, l, a, time.Second, true)
	check(t, l, b, 0, true)
	l.Failed(a)
	check(t, l, a, 0, false)
	check(t, l, b, 0, true)
	// The IPv4-mapped IPv6 form is the same client.
	check(t, l, net.ParseIP("::ffff:198.51.100.7"), 0, false)
}

func TestIPv6Per64(t *testing.T) {
	l, _ := newTest(Options{LockoutFailures: 2})
	l.Failed(net.ParseIP("2001:db8:1:2::1"))
	l.Failed(net.ParseIP("2001:db8:1:2:ffff::9"))
	check(t, l, net.ParseIP("2001:db8:1:2::abcd"), 0, false)
	check(t, l, net.ParseIP("2001:db8:1:3::1"), 0, true)
	// Junk input is one bucket, not a panic.
	l.Failed(nil)
	l.Failed(net.IP{1, 2, 3})
	check(t, l, nil, 0, false)
}

func TestNeverLockOut(t *testing.T) {
	l, _ := newTest(Options{LockoutFailures: -1, MaxDelay: 3 * time.Second})
	for range 50 {
		l.Failed(ip1)
	}
	check(t, l, ip1, 3*time.Second, true)
}

// Many addresses cannot grow the table past MaxEntries, and expired
// entries are swept as time passes.
func TestBoundedEntries(t *testing.T) {
	l, c := newTest(Options{MaxEntries: 100, Window: time.Minute})
	for i := range 1000 {
		l.Failed(net.IPv4(10, byte(i>>16), byte(i>>8), byte(i)))
		if n := len(l.entries); n > 100 {
			t.Fatalf("%d entries after %d failures, cap 100", n, i+1)
		}
	}
	// The most recent attacker is still tracked.
	last := net.IPv4(10, 0, 999>>8&0xff, 999&0xff)
	l.Failed(last)
	if _, ok := l.entries[key(last)]; !ok {
		t.Fatal("the latest client was evicted")
	}
	c.Advance(2 * time.Minute)
	l.Failed(ip1) // triggers the periodic sweep
	if n := len(l.entries); n != 1 {
		t.Fatalf("%d entries after everything expired, want 1", n)
	}
}

func TestConcurrent(t *testing.T) {
	l := New(Options{MaxEntries: 50})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				ip := net.ParseIP(fmt.Sprintf("192.0.2.%d", (g*31+i)%256))
				l.Check(ip)
				l.Failed(ip)
				if i%7 == 0 {
					l.Succeeded(ip)
				}
			}
		})
	}
	wg.Wait()
	if n := len(l.entries); n > 50 {
		t.Fatalf("%d entries, cap 50", n)
	}
}

func BenchmarkFailedManyIPs(b *testing.B) {
	l := New(Options{MaxEntries: 10000})
	i := 0
	for b.Loop() {
		i++
		l.Failed(net.IPv4(10, byte(i>>16), byte(i>>8), byte(i)))
	}
}
