package relay

import (
	"bufio"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// Replies of fakeMX's respond function that are not sent as text.
const (
	fakeStop   = "" // stop reading, keep the connection open
	fakeHangup = "\x00hangup"
	// fakeFlood sends 64 MiB of "250-" continuation lines, never the last
	// line, then waits: a reply without end.
	fakeFlood = "\x00flood"
	// fakeSilent sends nothing and reads on (message lines after DATA).
	fakeSilent = "\x00silent"
)

// fakeMX is a scripted SMTP server on loopback for misbehaviour go-smtp's
// server will not produce: respond gets each command line (upper-cased,
// trimmed) and returns the reply lines to send, fakeStop or fakeHangup.
// Its receive buffer is small, so a client's writes block soon after it
// stops reading. It returns the port.
func fakeMX(t *testing.T, respond func(cmd string) string) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.(*net.TCPConn).SetReadBuffer(4096)
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go func() {
				br := bufio.NewReader(c)
				c.Write([]byte("220 fake.test ESMTP\r\n"))
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					switch r := respond(strings.ToUpper(strings.TrimSpace(line))); r {
					case fakeStop:
						return
					case fakeHangup:
						c.Close()
						return
					case fakeSilent:
					case fakeFlood:
						line := []byte("250-" + strings.Repeat("x", 1020) + "\r\n")
						for range 64 << 10 {
							if _, err := c.Write(line); err != nil {
								return
							}
						}
						return
					default:
						c.Write([]byte(r))
					}
				}
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// A remote that stops reading in the middle of DATA must cost a worker
// one timeout, not the worker for good (RFC 5321 §4.5.3.2.5: 3 minutes
// per data block).
func TestStalledDataTimesOut(t *testing.T) {
	d := startDNS(t)
	port := fakeMX(t, func(cmd string) string {
		switch {
		case strings.HasPrefix(cmd, "EHLO"):
			return "250-fake.test\r\n250 8BITMIME\r\n"
		case cmd == "DATA":
			return "354 go ahead\r\n"
		case strings.HasPrefix(cmd, "MAIL"), strings.HasPrefix(cmd, "RCPT"):
			return "250 ok\r\n"
		}
		return fakeStop // the message itself: stop reading
	})
	d.add(t, "remote.test. 60 IN MX 10 mx1.remote.test.", "mx1.remote.test. 60 IN A 127.0.0.1")
	o := testOptions(t.TempDir(), d, port)
	o.CommandTimeout = 500 * time.Millisecond
	o.RetrySchedule = []time.Duration{time.Hour}
	q := startQueue(t, o)
	big := testMessage("alice@local.test", "m1@test") + strings.Repeat(strings.Repeat("x", 998)+"\r\n", 16<<10)
	id := enqueue(t, q, "alice@local.test", []string{"bob@remote.test"}, big)
	if r := afterFirstAttempt(t, q, id); r.State != StatePending || !strings.HasPrefix(r.Status, "4.") {
		t.Errorf("recipient after a stalled DATA = %+v, want pending 4.x.x", r)
	}
}

// afterFirstAttempt waits until message id has been tried once and
// returns its first recipient as saved.
func afterFirstAttempt(t *testing.T, q *Queue, id string) Recipient {
	t.Helper()
	var r Recipient
	waitFor(t, "the first attempt", func() bool {
		i, err := q.Show(id)
		if err == nil && i.Attempts > 0 {
			r = i.Recipients[0]
		}
		return err == nil && i.Attempts > 0
	})
	return r
}
