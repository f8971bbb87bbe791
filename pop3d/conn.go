package pop3d

// Invariants:
//   - One goroutine per connection reads, runs commands and writes; other
//     goroutines (Close, Shutdown, account removal) only close the raw
//     socket or move its read deadline, under c.mu.
//   - Replies are buffered and flushed when no further pipelined command
//     is waiting (RFC 2449 §6.6), and always before blocking on a read.
//   - Session.Close runs exactly once, however the connection ends; only
//     QUIT in TRANSACTION state calls Session.Update (RFC 1939 §6).

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"
)

type state int

const (
	stateAuthorization state = iota // RFC 1939 §4
	stateTransaction                // RFC 1939 §5
	stateUpdate                     // RFC 1939 §6
)

type conn struct {
	srv    *Server
	raw    net.Conn // the accepted socket; closing it ends everything
	nc     net.Conn // raw, or the TLS conn over it (only the conn goroutine swaps it)
	id     string
	remote net.Addr
	ctx    context.Context

	lr *lineReader
	bw *bufio.Writer
	mw *msgWriter

	isTLS   bool
	sess    Session
	state   state
	userArg string // from USER, for the following PASS
	bad     int    // bad commands so far
	fails   int    // failed logins on this connection
	errSeq  int    // internal error IDs

	mu   sync.Mutex
	user string // canonical user once in TRANSACTION
	idle bool   // waiting for a command
}

func (s *Server) newConn(nc net.Conn) *conn {
	c := &conn{
		srv:    s,
		raw:    nc,
		nc:     nc,
		id:     newSessionID(),
		remote: nc.RemoteAddr(),
		ctx:    context.Background(),
		mw:     newMsgWriter(),
	}
	c.lr = newLineReader(nc)
	c.bw = bufio.NewWriterSize(deadlineWriter{c}, 16*1024)
	return c
}

// deadlineWriter pushes the write deadline forward before every write, so
// a client that stops reading is dropped after WriteTimeout.
type deadlineWriter struct{ c *conn }

func (w deadlineWriter) Write(p []byte) (int, error) {
	w.c.raw.SetWriteDeadline(time.Now().Add(w.c.srv.opts.WriteTimeout))
	return w.c.nc.Write(p)
}

func (c *conn) loggedInUser() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.user
}

// interruptIdle ends a session that is waiting for a command (Shutdown).
func (c *conn) interruptIdle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.idle {
		c.raw.SetReadDeadline(time.Now())
	}
}

func (c *conn) log() *slog.Logger {
	return c.srv.opts.Logger.With("session", c.id, "remote", c.remote.String())
}

// serve runs the session to its end. It is the connection boundary: a
// panic here ends this connection only.
func (c *conn) serve() {
	defer func() {
		if r := recover(); r != nil {
			err := fmt.Errorf("pop3d: panic: %v", r)
			c.log().Error("pop3: panic in session", "err", err, "stack", string(debug.Stack()))
			if h := c.srv.opts.Hooks.OnError; h != nil {
				h(c.id, err)
			}
		}
		c.finish()
	}()
	if c.srv.opts.TLSMode == TLSImplicit {
		tc := tls.Server(c.raw, c.srv.opts.TLSConfig)
		if err := c.handshake(tc); err != nil {
			return
		}
		c.upgrade(tc)
	}
	sess, err := c.newSession()
	if err != nil {
		c.reply(c.errorReply(fmt.Errorf("pop3d: new session: %w", err)))
		c.bw.Flush()
		return
	}
	c.sess = sess
	c.reply("+OK " + c.srv.opts.Hostname + " POP3 server ready")
	for {
		line, err := c.readCommand()
		if errors.Is(err, errLineTooLong) {
			if c.badCommand("line too long") {
				c.bw.Flush()
				return
			}
			continue
		}
		if err != nil {
			c.endOnReadError(err)
			return
		}
		if quit := c.handleLine(line); quit {
			c.bw.Flush()
			return
		}
	}
}

func (c *conn) newSession() (Session, error) {
	info := ConnInfo{ID: c.id, Remote: c.remote}
	if c.srv.opts.NewSession != nil {
		return c.srv.opts.NewSession(info)
	}
	return newMaildropSession(c.srv.opts, info), nil
}

// finish releases the session without deleting anything (unless QUIT
// already ran Update) and closes the socket.
func (c *conn) finish() {
	if c.sess != nil {
		if err := c.sess.Close(); err != nil {
			c.log().Warn("pop3: closing session", "user", c.loggedInUser(), "err", err)
		}
	}
	c.raw.Close()
	if h := c.srv.opts.Hooks.OnClose; h != nil {
		h(c.id)
	}
}

// readCommand waits for the next command line, marking the session idle so
// that Shutdown may end it.
func (c *conn) readCommand() (string, error) {
	if !c.lr.hasLine() {
		if err := c.bw.Flush(); err != nil {
			return "", err
		}
	}
	c.mu.Lock()
	c.idle = true
	closing := c.srv.closingFlag.Load()
	if !closing {
		c.raw.SetReadDeadline(time.Now().Add(c.srv.opts.IdleTimeout))
	}
	c.mu.Unlock()
	if closing {
		return "", errShuttingDown
	}
	line, err := c.lr.readLine(c.srv.opts.MaxAuthLineLength)
	c.mu.Lock()
	c.idle = false
	c.mu.Unlock()
	return line, err
}

var errShuttingDown = errors.New("pop3d: server shutting down")

// endOnReadError tells the client why the session ends, where it can.
func (c *conn) endOnReadError(err error) {
	var ne net.Error
	switch {
	case errors.Is(err, errShuttingDown),
		errors.As(err, &ne) && ne.Timeout() && c.srv.closingFlag.Load():
		c.reply("-ERR [SYS/TEMP] server shutting down")
	case errors.Is(err, os.ErrDeadlineExceeded):
		// RFC 1939 §3: the autologout timer; no UPDATE state.
		c.reply("-ERR autologout: idle for too long")
	default:
		return
	}
	c.bw.Flush()
}

// handleLine runs one command line and reports whether the session ends.
func (c *conn) handleLine(line string) (quit bool) {
	if errors.Is(c.lineErr(line), errLineTooLong) {
		return c.badCommand("line too long")
	}
	if h := c.srv.opts.Hooks.OnCommand; h != nil {
		h(c.id, redact(line))
	}
	cmd, err := parseCommand(line)
	if err != nil {
		return c.badCommand(err.Error())
	}
	if c.srv.opts.TLSMode == TLSRequired && !c.isTLS {
		switch cmd.verb {
		case "CAPA", "STLS", "QUIT", "NOOP":
		default:
			c.reply("-ERR must issue STLS first")
			return false
		}
	}
	switch c.state {
	case stateAuthorization:
		return c.authorizationCommand(cmd)
	case stateTransaction:
		return c.transactionCommand(cmd)
	}
	return true
}

// lineErr applies the command length limit: only AUTH lines may use the
// longer SASL limit (RFC 5034 §4 initial responses).
func (c *conn) lineErr(line string) error {
	if len(line)+2 > c.srv.opts.MaxLineLength && !hasPrefixFold(line, "AUTH ") {
		return errLineTooLong
	}
	return nil
}

// badCommand answers an unknown, malformed or out-of-state command and
// ends the session after MaxBadCommands of them.
func (c *conn) badCommand(why string) (quit bool) {
	c.bad++
	if c.bad >= c.srv.opts.MaxBadCommands {
		c.reply("-ERR too many bad commands, closing connection")
		return true
	}
	c.reply("-ERR " + why)
	return false
}

// reply sends one status line (+OK, -ERR or a SASL "+ " continuation).
func (c *conn) reply(line string) {
	if h := c.srv.opts.Hooks.OnReply; h != nil {
		h(c.id, line)
	}
	c.bw.WriteString(line)
	c.bw.WriteString("\r\n")
}

func (c *conn) handshake(tc *tls.Conn) error {
	ctx, cancel := context.WithTimeout(c.ctx, c.srv.opts.TLSHandshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		c.log().Info("pop3: TLS handshake failed", "err", err)
		return err
	}
	return nil
}

// upgrade switches reading and writing to the TLS connection. The new line
// reader drops anything the client sent in plaintext after STLS: RFC 2595
// §4 forbids acting on it (the CVE-2011-0411 command injection).
func (c *conn) upgrade(tc *tls.Conn) {
	c.nc = tc
	c.isTLS = true
	c.lr = newLineReader(tc)
	c.bw.Reset(deadlineWriter{c})
}

// redact hides credentials from the command hook. It works on the raw
// line, before parsing, so odd separators (a tab) cannot slip a password
// through: everything after PASS, and after AUTH's mechanism, goes.
func redact(line string) string {
	switch {
	case len(line) > 4 && hasPrefixFold(line, "PASS"):
		return line[:4] + " <redacted>"
	case len(line) > 4 && hasPrefixFold(line, "AUTH"):
		f := strings.Fields(line[4:])
		if len(f) > 1 || len(f) == 1 && line[4] != ' ' {
			mech := ""
			if line[4] == ' ' {
				mech = " " + f[0]
			}
			return line[:4] + mech + " <redacted>"
		}
	}
	return line
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
