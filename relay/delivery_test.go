package relay

import (
	"bytes"
	"crypto/tls"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

func TestDeliverToPreferredMX(t *testing.T) {
	d := startDNS(t)
	best := startSink(t, "127.0.0.1", 0, nil, nil)
	worse := startSink(t, "127.0.0.2", best.port(), nil, nil)
	d.add(t,
		"remote.test. 60 IN MX 20 mx2.remote.test.",
		"remote.test. 60 IN MX 10 mx1.remote.test.",
		"mx1.remote.test. 60 IN A 127.0.0.1",
		"mx2.remote.test. 60 IN A 127.0.0.2",
	)
	q := startQueue(t, testOptions(t.TempDir(), d, best.port()))
	msg := testMessage("alice@local.test", "m1@test")
	enqueue(t, q, "alice@local.test", []string{"bob@remote.test"}, msg)
	waitFor(t, "delivery", func() bool { return len(best.messages()) == 1 })
	got := best.messages()[0]
	if got.From != "alice@local.test" || len(got.To) != 1 || got.To[0] != "bob@remote.test" {
		t.Errorf("envelope = %q -> %q", got.From, got.To)
	}
	if !bytes.Equal(got.Data, []byte(msg)) {
		t.Errorf("message changed in transit:\n%q\nwant\n%q", got.Data, msg)
	}
	waitFor(t, "empty queue", func() bool { l, _ := q.List(); return len(l) == 0 })
	if n := len(worse.messages()); n != 0 {
		t.Errorf("less preferred MX got %d messages", n)
	}
}

func TestFallbackToNextMXWhenFirstRefuses(t *testing.T) {
	d := startDNS(t)
	s := startSink(t, "127.0.0.1", 0, nil, nil)
	// Nothing listens on 127.0.0.3: connection refused.
	d.add(t,
		"remote.test. 60 IN MX 10 mx1.remote.test.",
		"remote.test. 60 IN MX 20 mx2.remote.test.",
		"mx1.remote.test. 60 IN A 127.0.0.3",
		"mx2.remote.test. 60 IN A 127.0.0.1",
	)
	q := startQueue(t, testOptions(t.TempDir(), d, s.port()))
	enqueue(t, q, "alice@local.test", []string{"bob@remote.test"}, testMessage("alice@local.test", "m1@test"))
	waitFor(t, "delivery via second MX", func() bool { return len(s.messages()) == 1 })
}

func TestFallbackToAddressWithoutMX(t *testing.T) {
	d := startDNS(t)
	s := startSink(t, "127.0.0.1", 0, nil, nil)
	d.add(t, "remote.test. 60 IN A 127.0.0.1") // no MX: implicit MX (RFC 5321 §5.1)
	q := startQueue(t, testOptions(t.TempDir(), d, s.port()))
	enqueue(t, q, "alice@local.test", []string{"bob@remote.test"}, testMessage("alice@local.test", "m1@test"))
	waitFor(t, "delivery by A record", func() bool { return len(s.messages()) == 1 })
}

func TestTemporaryFailureThenRetry(t *testing.T) {
	d := startDNS(t)
	s := startSink(t, "127.0.0.1", 0, nil, func(s *sink) {
		s.data = func(n int) error {
			if n == 1 {
				return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"}
			}
			return nil
		}
	})
	d.add(t, "remote.test. 60 IN MX 10 mx1.remote.test.", "mx1.remote.test. 60 IN A 127.0.0.1")
	local := &localSink{}
	o := testOptions(t.TempDir(), d, s.port())
	o.DeliverLocal = local.deliver
	q := startQueue(t, o)
	enqueue(t, q, "alice@local.test", []string{"bob@remote.test"}, testMessage("alice@local.test", "m1@test"))
	waitFor(t, "delivery on retry", func() bool { return len(s.messages()) == 1 })
	waitFor(t, "empty queue", func() bool { l, _ := q.List(); return len(l) == 0 })
	s.mu.Lock()
	datas := s.datas
	s.mu.Unlock()
	if datas != 2 {
		t.Errorf("DATA commands = %d, want 2 (fail, then retry)", datas)
	}
	if n := len(local.messages()); n != 0 {
		t.Errorf("%d bounces for a message delivered on retry", n)
	}
}

func TestPerRecipientStateRetriesOnlyTheFailed(t *testing.T) {
	d := startDNS(t)
	var carolTries atomic.Int32
	s := startSink(t, "127.0.0.1", 0, nil, func(s *sink) {
		s.rcpt = func(to string) error {
			if to == "carol@remote.test" && carolTries.Add(1) == 1 {
				return &smtp.SMTPError{Code: 450, EnhancedCode: smtp.EnhancedCode{4, 2, 1}, Message: "mailbox busy"}
			}
			return nil
		}
	})
	d.add(t, "remote.test. 60 IN MX 10 mx1.remote.test.", "mx1.remote.test. 60 IN A 127.0.0.1")
	q := startQueue(t, testOptions(t.TempDir(), d, s.port()))
	enqueue(t, q, "alice@local.test", []string{"bob@remote.test", "carol@remote.test"}, testMessage("alice@local.test", "m1@test"))
	waitFor(t, "both delivered", func() bool { return len(s.messages()) == 2 })
	waitFor(t, "empty queue", func() bool { l, _ := q.List(); return len(l) == 0 })
	msgs := s.messages()
	if len(msgs[0].To) != 1 || msgs[0].To[0] != "bob@remote.test" {
		t.Errorf("first transaction to %q, want only bob", msgs[0].To)
	}
	if len(msgs[1].To) != 1 || msgs[1].To[0] != "carol@remote.test" {
		t.Errorf("retry went to %q, want only carol", msgs[1].To)
	}
	for k, n := range s.counts() {
		if n != 1 {
			t.Errorf("%s delivered %d times", k, n)
		}
	}
}

func TestRecipientsGroupedByDomain(t *testing.T) {
	d := startDNS(t)
	s := startSink(t, "127.0.0.1", 0, nil, nil)
	d.add(t,
		"a.test. 60 IN MX 10 mx.a.test.", "mx.a.test. 60 IN A 127.0.0.1",
		"b.test. 60 IN MX 10 mx.b.test.", "mx.b.test. 60 IN A 127.0.0.1",
	)
	q := startQueue(t, testOptions(t.TempDir(), d, s.port()))
	enqueue(t, q, "alice@local.test", []string{"x@a.test", "y@b.test", "z@a.test"}, testMessage("alice@local.test", "m1@test"))
	waitFor(t, "two transactions", func() bool { return len(s.messages()) == 2 })
	var got []string
	for _, m := range s.messages() {
		got = append(got, strings.Join(m.To, ","))
	}
	if strings.Join(got, " ") != "x@a.test,z@a.test y@b.test" {
		t.Errorf("transactions = %q, want one per domain", got)
	}
}

func TestSTARTTLSToMX(t *testing.T) {
	srvTLS, pool := selfSigned(t, "mx1.remote.test")
	for _, tc := range []struct {
		name     string
		trust    bool
		wantTLS  string
		require  bool
		delivers bool
	}{
		{"self-signed accepted unverified", false, "tls=unverified", false, true},
		{"trusted is verified", true, "tls=verified", false, true},
		{"require TLS refuses unverified", false, "4.7.0", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := startDNS(t)
			s := startSink(t, "127.0.0.1", 0, srvTLS, nil)
			d.add(t, "remote.test. 60 IN MX 10 mx1.remote.test.", "mx1.remote.test. 60 IN A 127.0.0.1")
			logs := &logBuf{}
			o := testOptions(t.TempDir(), d, s.port())
			o.Logger = slogTo(logs)
			o.RequireTLS = tc.require
			if tc.trust {
				o.TLSConfig = &tls.Config{RootCAs: pool}
			}
			q := startQueue(t, o)
			id := enqueue(t, q, "alice@local.test", []string{"bob@remote.test"}, testMessage("alice@local.test", "m1@test"))
			if tc.delivers {
				waitFor(t, "delivery", func() bool { return len(s.messages()) == 1 })
				if !s.messages()[0].TLS {
					t.Error("message was not sent over TLS")
				}
				waitFor(t, "log of TLS outcome", func() bool { return strings.Contains(logs.String(), tc.wantTLS) })
				return
			}
			waitFor(t, "an attempt", func() bool { i, err := q.Show(id); return err == nil && i.Attempts > 0 })
			i, _ := q.Show(id)
			if r := i.Recipients[0]; r.State != StatePending || r.Status != tc.wantTLS {
				t.Errorf("recipient = %+v, want pending %s", r, tc.wantTLS)
			}
			if n := len(s.messages()); n != 0 {
				t.Errorf("%d messages sent despite RequireTLS", n)
			}
		})
	}
}

func TestSmarthostWithAuth(t *testing.T) {
	srvTLS, pool := selfSigned(t, "smarthost.test")
	d := startDNS(t)
	s := startSink(t, "127.0.0.1", 0, srvTLS, func(s *sink) { s.users = map[string]string{"office": "s3cret"} })
	o := testOptions(t.TempDir(), d, 1) // MX port unused: all goes to the smarthost
	o.Smarthost = s.addr
	o.SmarthostUser, o.SmarthostPassword = "office", "s3cret"
	o.TLSConfig = &tls.Config{RootCAs: pool}
	q := startQueue(t, o)
	// No DNS records at all: the smarthost needs none.
	enqueue(t, q, "alice@local.test", []string{"bob@remote.test", "eve@other.test"}, testMessage("alice@local.test", "m1@test"))
	waitFor(t, "delivery to smarthost", func() bool { return len(s.messages()) == 1 })
	m := s.messages()[0]
	if m.User != "office" || !m.TLS || len(m.To) != 2 {
		t.Errorf("smarthost got user %q, TLS %v, rcpts %q", m.User, m.TLS, m.To)
	}

	// Wrong password: not delivered, kept for retry (not bounced).
	o2 := o
	o2.DataDir = t.TempDir()
	o2.SmarthostPassword = "wrong"
	q2 := startQueue(t, o2)
	id := enqueue(t, q2, "alice@local.test", []string{"bob@remote.test"}, testMessage("alice@local.test", "m2@test"))
	waitFor(t, "an attempt", func() bool { i, err := q2.Show(id); return err == nil && i.Attempts > 0 })
	i, _ := q2.Show(id)
	if r := i.Recipients[0]; r.State != StatePending || !strings.Contains(r.Diagnostic, "535") {
		t.Errorf("after bad password: %+v", r)
	}
}

func slogTo(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

func TestMXOrderShufflesEqualPreferences(t *testing.T) {
	d := startDNS(t)
	d.add(t,
		"remote.test. 60 IN MX 20 c.remote.test.",
		"remote.test. 60 IN MX 10 a.remote.test.",
		"remote.test. 60 IN MX 10 b.remote.test.",
	)
	q, err := New(testOptions(t.TempDir(), d, 1))
	if err != nil {
		t.Fatal(err)
	}
	firsts := map[string]int{}
	for range 40 {
		hosts, err := q.mxHosts(t.Context(), "remote.test")
		if err != nil || len(hosts) != 3 {
			t.Fatalf("mxHosts = %q, %v", hosts, err)
		}
		if hosts[2] != "c.remote.test" {
			t.Fatalf("preference 20 not last: %q", hosts)
		}
		firsts[hosts[0]]++
	}
	// 40 fair coin flips all landing the same way: p = 2^-39.
	if firsts["a.remote.test"] == 0 || firsts["b.remote.test"] == 0 {
		t.Errorf("equal preferences never shuffled: %v", firsts)
	}
}

func TestSmarthostImplicitTLSAndPlain(t *testing.T) {
	srvTLS, pool := selfSigned(t, "smarthost.test")
	for _, tc := range []struct {
		name    string
		mode    TLSMode
		tls     *tls.Config
		wantTLS bool
	}{
		{"implicit", TLSImplicit, srvTLS, true},
		{"none", TLSNone, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := startDNS(t)
			s := startSink(t, "127.0.0.1", 0, tc.tls, func(s *sink) { s.implicit = tc.tls != nil })
			o := testOptions(t.TempDir(), d, 1)
			o.Smarthost = s.addr
			o.SmarthostTLS = tc.mode
			o.TLSConfig = &tls.Config{RootCAs: pool}
			q := startQueue(t, o)
			enqueue(t, q, "alice@local.test", []string{"bob@remote.test"}, testMessage("alice@local.test", "m1@test"))
			waitFor(t, "delivery to smarthost", func() bool { return len(s.messages()) == 1 })
			if got := s.messages()[0].TLS; got != tc.wantTLS {
				t.Errorf("TLS = %v, want %v", got, tc.wantTLS)
			}
		})
	}
}

func TestFailedHandshakeFallsBackToClear(t *testing.T) {
	srvTLS, _ := selfSigned(t, "mx1.remote.test")
	srvTLS.MinVersion = tls.VersionTLS13
	d := startDNS(t)
	s := startSink(t, "127.0.0.1", 0, srvTLS, nil)
	d.add(t, "remote.test. 60 IN MX 10 mx1.remote.test.", "mx1.remote.test. 60 IN A 127.0.0.1")
	logs := &logBuf{}
	o := testOptions(t.TempDir(), d, s.port())
	o.TLSConfig = &tls.Config{MaxVersion: tls.VersionTLS12} // no common version
	o.Logger = slogTo(logs)
	q := startQueue(t, o)
	enqueue(t, q, "alice@local.test", []string{"bob@remote.test"}, testMessage("alice@local.test", "m1@test"))
	waitFor(t, "delivery in clear", func() bool { return len(s.messages()) == 1 })
	if s.messages()[0].TLS {
		t.Error("delivered over TLS despite no common TLS version")
	}
	if l := logs.String(); !strings.Contains(l, "retrying in clear") || !strings.Contains(l, "tls=none") {
		t.Errorf("log does not record the fallback:\n%s", l)
	}
}

func TestTooManyRecipientsSplitsTransactions(t *testing.T) {
	d := startDNS(t)
	var inTx atomic.Int32
	s := startSink(t, "127.0.0.1", 0, nil, func(s *sink) {
		s.rcpt = func(string) error {
			if inTx.Add(1) > 2 {
				return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 5, 3}, Message: "too many recipients"}
			}
			return nil
		}
		s.data = func(int) error { inTx.Store(0); return nil }
	})
	d.add(t, "remote.test. 60 IN MX 10 mx1.remote.test.", "mx1.remote.test. 60 IN A 127.0.0.1")
	o := testOptions(t.TempDir(), d, s.port())
	o.RetrySchedule = []time.Duration{time.Hour} // all in the first attempt
	q := startQueue(t, o)
	rcpts := []string{"a@remote.test", "b@remote.test", "c@remote.test", "d@remote.test", "e@remote.test"}
	enqueue(t, q, "alice@local.test", rcpts, testMessage("alice@local.test", "m1@test"))
	waitFor(t, "three transactions", func() bool { l, _ := q.List(); return len(l) == 0 && len(s.messages()) == 3 })
	var got []string
	for _, m := range s.messages() {
		got = append(got, strings.Join(m.To, ","))
	}
	if strings.Join(got, " ") != "a@remote.test,b@remote.test c@remote.test,d@remote.test e@remote.test" {
		t.Errorf("transactions %q", got)
	}
}
