package smtpd

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
	"github.com/emersion/go-smtp"

	"github.com/mailsuite/mailsuite/mailstore"
)

// Data receives a message (DATA, or BDAT on its own goroutine) and
// delivers it. The reply is always an *smtp.SMTPError, 250 included, so
// the 250 can name the message ID as Postfix's "queued as" does.
func (s *session) Data(r io.Reader) error {
	s.mu.Lock()
	tx := s.tx
	tx.rcpts = append([]string(nil), tx.rcpts...)
	s.afterData = true
	s.mu.Unlock()

	cmd := "DATA"
	if pr, ok := r.(*io.PipeReader); ok {
		cmd = "BDAT" // go-smtp hands BDAT chunks through a pipe
		defer s.beginBDAT(pr)()
	}
	s.command(cmd)
	id := newID()
	err := s.data(r, tx, id)
	if err == nil {
		ok := &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: "OK: queued as " + id}
		s.replied(replyLine(ok))
		return ok
	}
	return s.answer(cmd, err, "", id)
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooled keeps one large message from pinning its buffer forever.
const maxPooled = 1 << 20

// data reads the message and delivers it. Mail for local users only
// streams into the store as it arrives (in memory: one read buffer and the
// header); a whole copy is kept in memory only when OnMessage or the relay
// needs the message after it has been read.
func (s *session) data(r io.Reader, tx envelope, id string) (err error) {
	o := &s.srv.opts
	var sinks []io.Writer
	var trace string
	if len(tx.local) > 0 || len(tx.remote) > 0 {
		trace = received(s.trace(id, tx.rcpts))
	}
	var d *mailstore.Delivery
	if len(tx.local) > 0 {
		if d, err = s.takeDelivery(); err != nil {
			return fmt.Errorf("begin delivery of %s: %w", id, err)
		}
		defer func() {
			if err != nil {
				d.Abort()
			}
		}()
		// Return-Path is added at final delivery (RFC 5321 §4.4).
		if _, err := io.WriteString(d, "Return-Path: <"+tx.from+">\r\n"+trace); err != nil {
			return fmt.Errorf("write %s: %w", id, err)
		}
		sinks = append(sinks, d)
	}
	var buf *bytes.Buffer
	if o.Hooks.OnMessage != nil || len(tx.remote) > 0 {
		buf = bufPool.Get().(*bytes.Buffer)
		buf.Reset()
		pooled := o.Hooks.OnMessage == nil // a hook may keep Raw past its call
		defer func() {
			if pooled && buf.Cap() <= maxPooled {
				bufPool.Put(buf)
			}
		}()
		sinks = append(sinks, buf)
	}
	var hdr *headerCapture
	if o.Role == RoleSubmission {
		hdr = &headerCapture{}
		sinks = append(sinks, hdr)
	}
	if err := s.copyData(r, sinks, id); err != nil {
		return err
	}

	if hdr != nil {
		if err := checkFromHeader(hdr.b, func(addr string) bool {
			return o.Directory.CanSendAs(s.user(), addr)
		}); err != nil {
			return err
		}
	}
	if h := o.Hooks.OnMessage; h != nil {
		m := &Message{Session: s.snapshot(), ID: id, From: tx.from, To: tx.rcpts, Raw: buf.Bytes()}
		if err := h(m); err != nil {
			return err
		}
	}
	// Local first, relay second: see "Delivery" in the package doc.
	if d != nil {
		if err := d.Commit(s.srv.ctx, tx.local); err != nil {
			return fmt.Errorf("deliver %s to %v: %w", id, tx.local, err)
		}
	}
	if len(tx.remote) > 0 {
		qid, err := o.Relay.Enqueue(s.srv.ctx, tx.from, tx.remote, io.MultiReader(strings.NewReader(trace), bytes.NewReader(buf.Bytes())))
		if err != nil {
			if d != nil {
				s.srv.log.Warn("local copies delivered but the relay refused the message; a retry duplicates them", "id", id, "local", tx.local)
			}
			return fmt.Errorf("relay enqueue of %s: %w", id, err)
		}
		s.srv.log.Info("message queued for relay", "id", id, "queue_id", qid, "from", tx.from, "to", tx.remote)
	}
	s.srv.log.Info("message accepted", "session", s.info.ID, "id", id, "from", tx.from,
		"local", tx.local, "remote", len(tx.remote))
	return nil
}

var chunkPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// copyData reads the message through the line guard into every sink.
// Read errors are the client's (answered by dataReadError); write errors
// are ours.
func (s *session) copyData(r io.Reader, sinks []io.Writer, id string) error {
	g := &lineGuard{r: r, conn: s.conn.Conn(), timeout: s.srv.opts.DataTimeout}
	cp := chunkPool.Get().(*[]byte)
	defer chunkPool.Put(cp)
	chunk := *cp
	for {
		n, rerr := g.Read(chunk)
		for _, w := range sinks {
			if _, err := w.Write(chunk[:n]); err != nil {
				return fmt.Errorf("write %s: %w", id, err)
			}
		}
		switch {
		case rerr == io.EOF:
			return nil
		case rerr != nil:
			err := dataReadError(rerr)
			if err == errDataAborted {
				s.srv.log.Info("message transfer aborted", "session", s.info.ID, "id", id, "err", rerr)
			}
			if err == errDataTimeout {
				// The rest of the message may still arrive, and go-smtp
				// would read it as commands: stop reading. The reply still
				// goes out; go-smtp then sees EOF and closes.
				s.tc.stopReading()
			}
			return err
		}
	}
}

// dataReadError maps a failure to read message data to a reply. Every
// read error is the client's doing (or its connection's), never ours.
func dataReadError(err error) error {
	var ne net.Error
	var se *smtp.SMTPError
	switch {
	case errors.As(err, &se):
		return se // ErrDataTooLarge, errBareLineEnd
	case errors.Is(err, smtp.ErrTooLongLine):
		return errLineTooLong
	case errors.As(err, &ne) && ne.Timeout():
		return errDataTimeout
	}
	return errDataAborted // connection lost, RSET or QUIT between BDAT chunks
}

// lineGuard passes message data through, refusing bare CR and bare LF
// (see "SMTP smuggling" in the package doc), and renews the read deadline
// before each read so DataTimeout bounds every wait for data.
type lineGuard struct {
	r       io.Reader
	conn    net.Conn
	timeout time.Duration
	prevCR  bool
}

func (g *lineGuard) Read(p []byte) (int, error) {
	if g.timeout > 0 {
		g.conn.SetReadDeadline(time.Now().Add(g.timeout))
	}
	n, err := g.r.Read(p)
	for _, c := range p[:n] {
		if g.prevCR != (c == '\n') {
			return 0, errBareLineEnd // CR not before LF, or LF not after CR
		}
		g.prevCR = c == '\r'
	}
	if err == io.EOF && g.prevCR {
		return 0, errBareLineEnd
	}
	return n, err
}

// headerCapture keeps the header section of what is written to it, for the
// From: check; a header that has not ended within maxHeaderBytes is
// dropped, which fails the check.
type headerCapture struct {
	b    []byte
	done bool
}

const maxHeaderBytes = 1 << 20

func (h *headerCapture) Write(p []byte) (int, error) {
	if !h.done {
		h.b = append(h.b, p...)
		if end := headerEnd(h.b); end >= 0 {
			h.b, h.done = h.b[:end], true
		} else if len(h.b) > maxHeaderBytes {
			h.b, h.done = nil, true
		}
	}
	return len(p), nil
}

// headerEnd returns the length of raw's header section including the blank
// line that ends it (RFC 5322 §2.1), or -1 if raw holds no blank line.
func headerEnd(raw []byte) int {
	if bytes.HasPrefix(raw, []byte("\r\n")) {
		return 2
	}
	if i := bytes.Index(raw, []byte("\r\n\r\n")); i >= 0 {
		return i + 4
	}
	return -1
}

// checkFromHeader checks that the message header has exactly one From:
// field and that may accepts every address in it (RFC 5322 §3.6.2).
func checkFromHeader(raw []byte, may func(addr string) bool) error {
	if end := headerEnd(raw); end >= 0 {
		raw = raw[:end]
	}
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		return errBadFrom
	}
	if len(h.Values("From")) != 1 {
		return errBadFrom
	}
	mh := mail.Header{Header: message.Header{Header: h}}
	addrs, err := mh.AddressList("From")
	if err != nil || len(addrs) == 0 {
		return errBadFrom
	}
	for _, a := range addrs {
		if !may(a.Address) {
			return errNotOwnFrom
		}
	}
	return nil
}
