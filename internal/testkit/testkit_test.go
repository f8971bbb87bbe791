package testkit

import (
	"crypto/tls"
	"testing"
)

// The certificate verifies for its names and loopback, over a real handshake.
func TestSelfSignedHandshake(t *testing.T) {
	c := SelfSigned(t, "mx.test", "localhost")
	ln, err := tls.Listen("tcp", "127.0.0.1:0", c.ServerConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conn.(*tls.Conn).Handshake()
			conn.Close()
		}
	}()
	for _, name := range []string{"mx.test", "localhost", "127.0.0.1"} {
		conn, err := tls.Dial("tcp", ln.Addr().String(), c.ClientConfig(name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		conn.Close()
	}
	if conn, err := tls.Dial("tcp", ln.Addr().String(), c.ClientConfig("other.test")); err == nil {
		conn.Close()
		t.Error("the certificate verified for a name it does not carry")
	}
	if c.TLS.Leaf.Subject.CommonName != "mx.test" {
		t.Errorf("CN = %q", c.TLS.Leaf.Subject.CommonName)
	}
}
