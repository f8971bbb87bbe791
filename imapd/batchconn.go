package imapd

import (
	"net"
	"sync"
	"time"
)

// go-imap flushes its buffered writer after every response line, so a
// FETCH 1:* over 100,000 messages would cost 100,000 write system calls
// (and as many TLS records on the wire). batchConn sits under go-imap (and
// under TLS) and, while a session method runs, gathers those writes into
// batchSize chunks; the method's end flushes. Outside a method (greeting,
// tagged replies, IDLE updates) writes go straight through.
const (
	batchSize         = 32 << 10
	batchWriteTimeout = time.Minute
)

type batchConn struct {
	net.Conn

	// onReadDeadline, if set, runs after every SetReadDeadline, told
	// whether anything was written since the last end (see
	// session.betweenCommands). Set before the engine uses the conn.
	onReadDeadline func(wrote bool)

	mu       sync.Mutex
	wrote    bool // since the last end
	batching bool
	buf      []byte
	deadline time.Time // last write deadline asked for while batching
}

func (c *batchConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wrote = true
	if !c.batching {
		return c.Conn.Write(p)
	}
	if c.buf == nil {
		c.buf = make([]byte, 0, batchSize)
	}
	c.buf = append(c.buf, p...)
	if len(c.buf) >= batchSize {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// SetWriteDeadline is deferred while batching: go-imap sets one per
// response, and what matters is the deadline of the actual write.
func (c *batchConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.batching {
		c.deadline = t
		return nil
	}
	return c.Conn.SetWriteDeadline(t)
}

func (c *batchConn) SetReadDeadline(t time.Time) error {
	err := c.Conn.SetReadDeadline(t)
	if c.onReadDeadline != nil {
		c.mu.Lock()
		wrote := c.wrote
		c.mu.Unlock()
		c.onReadDeadline(wrote)
	}
	return err
}

func (c *batchConn) begin() {
	c.mu.Lock()
	c.batching = true
	c.mu.Unlock()
}

// end flushes what was gathered and returns to writing through.
func (c *batchConn) end() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.flushLocked()
	c.batching = false
	c.wrote = false
	c.buf = nil // an idle connection keeps no buffer
	c.Conn.SetWriteDeadline(c.deadline)
	return err
}

func (c *batchConn) flushLocked() error {
	if len(c.buf) == 0 {
		return nil
	}
	c.Conn.SetWriteDeadline(time.Now().Add(batchWriteTimeout))
	_, err := c.Conn.Write(c.buf)
	c.buf = c.buf[:0]
	return err
}
