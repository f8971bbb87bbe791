package relay

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// A domain may publish any number of MX hosts, each with many addresses;
// one attempt must not try them all (a worker could be tied up for hours
// by a domain whose addresses all time out). Postfix and Exim stop at 5.
func TestAttemptTriesBoundedAddresses(t *testing.T) {
	d := startDNS(t)
	for i := range 8 {
		d.add(t, fmt.Sprintf("remote.test. 60 IN MX %d mx%d.remote.test.", i, i))
		for j := range 2 {
			d.add(t, fmt.Sprintf("mx%d.remote.test. 60 IN A 127.0.0.%d", i, 3+j))
		}
	}
	var dials atomic.Int32
	o := testOptions(t.TempDir(), d, 1) // nothing listens: each dial is refused at once
	o.RetrySchedule = []time.Duration{time.Hour}
	o.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return (&net.Dialer{Timeout: time.Second}).DialContext(ctx, network, addr)
	}
	q := startQueue(t, o)
	id := enqueue(t, q, "alice@local.test", []string{"bob@remote.test"}, testMessage("alice@local.test", "m1@test"))
	r := afterFirstAttempt(t, q, id)
	if n := dials.Load(); n < 1 || n > maxMXAddrs {
		t.Errorf("one attempt dialled %d addresses, want 1 to %d", n, maxMXAddrs)
	}
	if r.State != StatePending || r.Status != "4.4.1" {
		t.Errorf("recipient = %+v, want pending 4.4.1", r)
	}
}
