package relay

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A remote's reply may not grow without end: go-smtp's reader has no
// limit, so a hostile MX streaming "250-..." lines would grow our memory
// for as long as CommandTimeout lasts. The session gives up at a cap.
func TestEndlessReplyIsCut(t *testing.T) {
	d := startDNS(t)
	var ehlos atomic.Int32
	port := fakeMX(t, func(cmd string) string {
		if strings.HasPrefix(cmd, "EHLO") {
			if ehlos.Add(1) == 1 {
				return "250-fake.test\r\n250 8BITMIME\r\n" // our own pre-TLS EHLO
			}
			return fakeFlood // go-smtp's
		}
		return fakeHangup
	})
	d.add(t, "remote.test. 60 IN MX 10 mx1.remote.test.", "mx1.remote.test. 60 IN A 127.0.0.1")
	o := testOptions(t.TempDir(), d, port)
	o.CommandTimeout = time.Minute // the cap, not the timeout, must end it
	o.RetrySchedule = []time.Duration{time.Hour}
	q := startQueue(t, o)
	id := enqueue(t, q, "alice@local.test", []string{"bob@remote.test"}, testMessage("alice@local.test", "m1@test"))
	if r := afterFirstAttempt(t, q, id); r.State != StatePending || !strings.Contains(r.Diagnostic, "too much") {
		t.Errorf("recipient after an endless reply = %+v, want pending, cut off", r)
	}
}
