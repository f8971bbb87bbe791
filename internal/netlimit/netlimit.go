// Package netlimit wraps a net.Listener to cap connections in total and per
// client IP, and to let an embedder refuse a client by address before the
// protocol library writes its greeting (go-smtp greets before NewSession, so
// a per-session check would come too late).
//
// Refused connections are closed at once; the listener never blocks Accept
// waiting for a slot, so a flood cannot stall service to others.
package netlimit

import (
	"net"
	"sync"
	"time"
)

// Options for Wrap. Zero limits mean unlimited.
type Options struct {
	MaxConns      int
	MaxConnsPerIP int
	// Allow is asked about each new connection; returning false closes it.
	// It runs on the accept loop, so it should be quick.
	Allow func(remote net.Addr) bool
	// OnRefused, if set, is told why a connection was dropped ("limit",
	// "per-ip limit" or "refused").
	OnRefused func(remote net.Addr, reason string)
	// Busy, if set, is sent to a client refused for a limit before the
	// connection closes (e.g. "421 4.7.0 too many connections"), so it
	// retries later instead of reporting a broken server. Leave it nil on
	// implicit-TLS listeners, where the client expects a handshake.
	Busy []byte
}

// Listener is a net.Listener that enforces Options.
type Listener struct {
	net.Listener
	opts  Options
	mu    sync.Mutex
	total int
	perIP map[string]int
}

// Wrap returns ln with limits applied.
func Wrap(ln net.Listener, opts Options) *Listener {
	return &Listener{Listener: ln, opts: opts, perIP: make(map[string]int)}
}

// Accept returns the next connection that passes the limits.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.opts.Allow != nil && !l.opts.Allow(c.RemoteAddr()) {
			l.refuse(c, "refused")
			continue
		}
		ip := hostOf(c.RemoteAddr())
		l.mu.Lock()
		switch {
		case l.opts.MaxConns > 0 && l.total >= l.opts.MaxConns:
			l.mu.Unlock()
			l.refuse(c, "limit")
			continue
		case l.opts.MaxConnsPerIP > 0 && l.perIP[ip] >= l.opts.MaxConnsPerIP:
			l.mu.Unlock()
			l.refuse(c, "per-ip limit")
			continue
		}
		l.total++
		l.perIP[ip]++
		l.mu.Unlock()
		return &conn{Conn: c, l: l, ip: ip}, nil
	}
}

// Active returns the number of open connections.
func (l *Listener) Active() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

func (l *Listener) refuse(c net.Conn, reason string) {
	if l.opts.OnRefused != nil {
		l.opts.OnRefused(c.RemoteAddr(), reason)
	}
	if l.opts.Busy != nil && reason != "refused" {
		// A fresh socket's send buffer is empty, so this does not block the
		// accept loop; the deadline is a guard all the same.
		c.SetWriteDeadline(time.Now().Add(time.Second))
		c.Write(l.opts.Busy)
	}
	c.Close()
}

func (l *Listener) release(ip string) {
	l.mu.Lock()
	l.total--
	if l.perIP[ip]--; l.perIP[ip] <= 0 {
		delete(l.perIP, ip)
	}
	l.mu.Unlock()
}

type conn struct {
	net.Conn
	l    *Listener
	ip   string
	once sync.Once
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.ip) })
	return err
}

// Unwrap returns the underlying connection.
func (c *conn) Unwrap() net.Conn { return c.Conn }

func hostOf(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// IP returns the client IP of a connection's remote address, or nil.
func IP(a net.Addr) net.IP {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return nil
	}
	return net.ParseIP(host)
}

// IsLoopback reports whether a is a loopback address (127.0.0.0/8, ::1).
func IsLoopback(a net.Addr) bool {
	ip := IP(a)
	return ip != nil && ip.IsLoopback()
}

// BusyReply returns line as the Busy message for a plaintext listener and
// nil for an implicit-TLS one, where the client expects a handshake first.
func BusyReply(plaintext bool, line string) []byte {
	if !plaintext {
		return nil
	}
	return []byte(line)
}
