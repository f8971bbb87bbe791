package pop3d

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mailsuite/mailsuite/internal/authlimit"
)

// loopbackPipe is one end of a net.Pipe that claims a loopback address, so
// AllowInsecureAuth lets the fuzzer log in with USER/PASS.
type loopbackPipe struct{ net.Conn }

func (loopbackPipe) RemoteAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }

// FuzzSession walks a session into each state (AUTHORIZATION, mid-SASL,
// TRANSACTION) and then feeds it arbitrary lines. It checks that the
// session never panics, ends when the input does, and answers every line
// with a well-formed status line first.
func FuzzSession(f *testing.F) {
	for _, s := range []string{
		"STAT\r\nLIST\r\nUIDL 1\r\nTOP 1 0\r\nRETR 2\r\nDELE 1\r\nRSET\r\n",
		"AUTH PLAIN\r\n*\r\nCAPA\r\n",
		"DELE 1\r\nDELE 1\r\nLIST 1\r\nQUIT\r\n",
		"TOP 3 99999999999\r\nLIST 4294967297\r\nAPOP a b\r\n\x00\xff\r\n",
		"USER\r\nPASS\r\nSTLS\r\nAUTH LOGIN =\r\n",
		strings.Repeat("NOOP ", 200) + "\r\n",
	} {
		for stage := uint8(0); stage < 3; stage++ {
			f.Add(stage, []byte(s))
		}
	}
	var panics []error
	env := startServer(f, func(o *Options) {
		o.AllowInsecureAuth = true
		// No throttling delays: the fuzzer fails logins on purpose.
		o.Limiter = authlimit.New(authlimit.Options{FreeFailures: 1 << 30, LockoutFailures: 1 << 30})
		o.MaxBadCommands = 1000
		o.MaxAuthFailures = 1000
		o.Hooks.OnError = func(id string, err error) {
			if strings.Contains(err.Error(), "panic") {
				panics = append(panics, err)
			}
		}
	})
	for _, m := range []string{msg1, msg2, msg3} {
		env.deliver(alice, m)
	}
	prefixes := []string{
		"",
		"AUTH LOGIN\r\n",
		"USER " + alice + "\r\nPASS " + alicePass + "\r\n",
	}
	f.Fuzz(func(t *testing.T, stage uint8, input []byte) {
		prefix := prefixes[int(stage)%len(prefixes)]
		server, clientEnd := net.Pipe()
		c := env.srv.newConn(loopbackPipe{server})
		done := make(chan struct{})
		go func() { c.serve(); close(done) }()
		out := make(chan []byte, 1)
		go func() { b, _ := io.ReadAll(clientEnd); out <- b }()
		clientEnd.SetWriteDeadline(time.Now().Add(5 * time.Second))
		clientEnd.Write([]byte(prefix))
		clientEnd.Write(input)
		clientEnd.Write([]byte("\r\nRSET\r\n"))
		clientEnd.Close() // a dropped connection: nothing is deleted
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("session did not end")
		}
		b := <-out
		if len(panics) > 0 {
			t.Fatalf("panic: %v", panics[0])
		}
		if !bytes.HasPrefix(b, []byte("+OK ")) && len(b) > 0 {
			t.Fatalf("bad greeting %q", b)
		}
		u, _ := env.store.User(alice)
		inbox, _ := u.Folder("INBOX")
		msgs, err := inbox.Sync()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(bytes.ToUpper(input), []byte("QUIT")) && len(msgs) != 3 {
			t.Fatalf("a dropped session deleted mail: %d left", len(msgs))
		}
		for i := len(msgs); i < 3; i++ {
			if _, err := inbox.Append(strings.NewReader(msg1), nil, time.Now()); err != nil {
				t.Fatal(err)
			}
		}
	})
}
