package relay

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"
)

// rawServer runs script on every connection to a loopback listener.
func rawServer(t *testing.T, script func(c net.Conn, r *bufio.Reader)) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				script(c, bufio.NewReader(c))
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// Hostile or broken servers before the SMTP session proper: the attempt
// fails temporarily and promptly, nothing hangs or grows without bound.
func TestHostilePreTLSServers(t *testing.T) {
	for _, tc := range []struct {
		name   string
		script func(c net.Conn, r *bufio.Reader)
		want   string
	}{
		{"endless greeting", func(c net.Conn, r *bufio.Reader) {
			c.Write([]byte("220-"))
			chunk := []byte(strings.Repeat("x", 4096))
			for range 64 {
				if _, err := c.Write(chunk); err != nil {
					return
				}
			}
		}, "too much"},
		{"data injected after STARTTLS", func(c net.Conn, r *bufio.Reader) {
			c.Write([]byte("220 hi\r\n"))
			r.ReadString('\n')
			c.Write([]byte("250-hi\r\n250 STARTTLS\r\n"))
			r.ReadString('\n')
			c.Write([]byte("220 go ahead\r\n250 injected\r\n"))
			r.ReadString('\n')
		}, "sent data after STARTTLS"},
		{"greeting refused", func(c net.Conn, r *bufio.Reader) {
			c.Write([]byte("554 5.7.1 go away\r\n"))
		}, "554 5.7.1 go away"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := startDNS(t)
			d.add(t, "remote.test. 60 IN MX 10 mx1.remote.test.", "mx1.remote.test. 60 IN A 127.0.0.1")
			o := testOptions(t.TempDir(), d, rawServer(t, tc.script))
			o.RetrySchedule = []time.Duration{time.Hour}
			q := startQueue(t, o)
			id := enqueue(t, q, "alice@local.test", []string{"bob@remote.test"}, testMessage("alice@local.test", "m1@test"))
			waitFor(t, "an attempt", func() bool { i, err := q.Show(id); return err == nil && i.Attempts == 1 })
			i, _ := q.Show(id)
			r := i.Recipients[0]
			if r.State != StatePending || !strings.HasPrefix(r.Status, "4.") || !strings.Contains(r.Diagnostic, tc.want) {
				t.Errorf("recipient = %+v, want pending 4.x.x mentioning %q", r, tc.want)
			}
		})
	}
}
