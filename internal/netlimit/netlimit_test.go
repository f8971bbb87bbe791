package netlimit

import (
	"io"
	"net"
	"testing"
	"time"
)

// dialAndWait dials ln and reports whether the server kept the connection
// open (true) or closed it at once (false).
func dialAndWait(t *testing.T, addr string) (net.Conn, bool) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	var b [1]byte
	_, err = c.Read(b[:])
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return c, true // still open: accepted
	}
	c.Close()
	return nil, false
}

func TestLimits(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := make(chan string, 10)
	ln := Wrap(raw, Options{MaxConns: 3, MaxConnsPerIP: 2, OnRefused: func(_ net.Addr, why string) { refused <- why }})
	defer ln.Close()
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	addr := raw.Addr().String()
	c1, ok1 := dialAndWait(t, addr)
	c2, ok2 := dialAndWait(t, addr)
	if !ok1 || !ok2 {
		t.Fatal("first two connections from one IP should be accepted")
	}
	if _, ok := dialAndWait(t, addr); ok {
		t.Fatal("third connection from the same IP should be refused")
	}
	if why := <-refused; why != "per-ip limit" {
		t.Fatalf("refusal reason = %q, want per-ip limit", why)
	}
	// Closing one frees its slot.
	(<-accepted).Close()
	c1.Close()
	deadline := time.Now().Add(2 * time.Second)
	for ln.Active() != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := ln.Active(); n != 1 {
		t.Fatalf("Active = %d after a close, want 1", n)
	}
	c3, ok3 := dialAndWait(t, addr)
	if !ok3 {
		t.Fatal("a freed slot should accept a new connection")
	}
	c2.Close()
	c3.Close()
}

func TestBusyMessageOnLimit(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := Wrap(raw, Options{MaxConns: 1, Busy: []byte("421 4.7.0 too many connections\r\n")})
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	first, ok := dialAndWait(t, raw.Addr().String())
	if !ok {
		t.Fatal("first connection refused")
	}
	defer first.Close()
	c, err := net.Dial("tcp", raw.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	got, _ := io.ReadAll(c)
	if string(got) != "421 4.7.0 too many connections\r\n" {
		t.Fatalf("refused client read %q", got)
	}
}

func TestAllowRefusesByAddress(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := Wrap(raw, Options{Allow: func(a net.Addr) bool { return !IsLoopback(a) }})
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	if _, ok := dialAndWait(t, raw.Addr().String()); ok {
		t.Fatal("a blocked address should be closed before any greeting")
	}
	if ln.Active() != 0 {
		t.Fatalf("Active = %d, want 0", ln.Active())
	}
}
