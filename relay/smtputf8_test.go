package relay

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// RFC 6531 §3.2: an internationalised message fails for good only when the
// server lacks SMTPUTF8; a connection lost at MAIL FROM is an ordinary
// temporary failure, retried like any other.
func TestSMTPUTF8LostConnectionIsTemporary(t *testing.T) {
	for _, tc := range []struct {
		name       string
		ext        string
		wantState  State
		wantStatus string
	}{
		{"offered, connection lost", "250-fake.test\r\n250 SMTPUTF8\r\n", StatePending, "4.4.2"},
		{"not offered", "250-fake.test\r\n250 8BITMIME\r\n", StateFailed, "5.6.7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := startDNS(t)
			port := fakeMX(t, func(cmd string) string {
				if strings.HasPrefix(cmd, "EHLO") {
					return tc.ext
				}
				return fakeHangup
			})
			d.add(t, "remote.test. 60 IN MX 10 mx1.remote.test.", "mx1.remote.test. 60 IN A 127.0.0.1")
			o := testOptions(t.TempDir(), d, port)
			o.RetrySchedule = []time.Duration{time.Hour}
			q := startQueue(t, o)
			id := enqueue(t, q, "dörte@local.test", []string{"bob@remote.test"}, testMessage("dörte@local.test", "m1@test"))
			// The envelope, in the queue or (failed for good) in failed/.
			var e *Envelope
			waitFor(t, "one attempt", func() bool {
				for _, dir := range []string{"queue", "queue/failed"} {
					data, err := os.ReadFile(filepath.Join(o.DataDir, dir, id+".env"))
					if err == nil {
						e, err = ParseEnvelope(data)
						return err == nil && e.Attempts == 1
					}
				}
				return false
			})
			if r := e.Recipients[0]; r.State != tc.wantState || r.Status != tc.wantStatus {
				t.Errorf("recipient = %+v, want %s %s", r, tc.wantState, tc.wantStatus)
			}
		})
	}
}

// An address whose only non-ASCII part is the domain needs no SMTPUTF8:
// its domain goes out as A-labels (RFC 6531 §3.2, RFC 5890), so a server
// without the extension still gets the mail.
func TestUnicodeDomainSentAsALabels(t *testing.T) {
	d := startDNS(t)
	var mu sync.Mutex
	var cmds []string
	inData := false
	port := fakeMX(t, func(cmd string) string {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case inData && cmd == ".":
			inData = false
			return "250 ok\r\n"
		case inData:
			return fakeSilent
		case strings.HasPrefix(cmd, "EHLO"):
			return "250-fake.test\r\n250 8BITMIME\r\n"
		case cmd == "DATA":
			inData = true
			return "354 go ahead\r\n"
		case cmd == "QUIT":
			return "221 bye\r\n"
		}
		cmds = append(cmds, cmd)
		return "250 ok\r\n"
	})
	d.add(t, "xn--bcher-kva.test. 60 IN MX 10 mx1.remote.test.", "mx1.remote.test. 60 IN A 127.0.0.1")
	o := testOptions(t.TempDir(), d, port)
	o.RetrySchedule = []time.Duration{time.Hour}
	q := startQueue(t, o)
	enqueue(t, q, "alice@local.test", []string{"bob@bücher.test"}, testMessage("alice@local.test", "m1@test"))
	waitFor(t, "delivery", func() bool { l, _ := q.List(); return len(l) == 0 })
	mu.Lock()
	defer mu.Unlock()
	got := strings.Join(cmds, " | ")
	if !strings.HasPrefix(got, "MAIL FROM:<ALICE@LOCAL.TEST>") || strings.Contains(got, "SMTPUTF8") || !strings.HasSuffix(got, " | RCPT TO:<BOB@XN--BCHER-KVA.TEST>") {
		t.Errorf("commands %q, want MAIL without SMTPUTF8 and RCPT with the A-label domain", got)
	}
}
