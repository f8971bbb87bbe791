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
	if _, ok := r.(*io.PipeReader); ok {
		cmd = "BDAT" // go-smtp hands BDAT chunks through a pipe
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

func (s *session) data(r io.Reader, tx envelope, id string) error {
	o := &s.srv.opts
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	pooled := o.Hooks.OnMessage == nil // a hook may keep Raw past its call
	defer func() {
		if pooled && buf.Cap() <= maxPooled {
			bufPool.Put(buf)
		}
	}()
	g := &lineGuard{r: r, conn: s.conn.Conn(), timeout: o.DataTimeout}
	if _, err := buf.ReadFrom(g); err != nil {
		err = dataReadError(err)
		if err == errDataTimeout {
			// The rest of the message may still arrive, and go-smtp would
			// read it as commands: stop reading; the reply still goes out
			// and go-smtp then sees EOF and closes.
			s.tc.closeRead()
		}
		return err
	}
	raw := buf.Bytes()

	if o.Role == RoleSubmission {
		if err := checkFromHeader(raw, func(addr string) bool {
			return o.Directory.CanSendAs(s.user(), addr)
		}); err != nil {
			return err
		}
	}
	if h := o.Hooks.OnMessage; h != nil {
		m := &Message{Session: s.snapshot(), ID: id, From: tx.from, To: tx.rcpts, Raw: raw}
		if err := h(m); err != nil {
			return err
		}
	}
	if len(tx.local) == 0 && len(tx.remote) == 0 {
		return nil // standalone: OnMessage was the destination
	}
	trace := received(s.trace(id, tx.rcpts))

	// Local first, relay second: see "Delivery" in the package doc.
	if len(tx.local) > 0 {
		if err := s.deliverLocal(tx, id, trace, raw); err != nil {
			return err
		}
	}
	if len(tx.remote) > 0 {
		qid, err := o.Relay.Enqueue(s.srv.ctx, tx.from, tx.remote, io.MultiReader(strings.NewReader(trace), bytes.NewReader(raw)))
		if err != nil {
			if len(tx.local) > 0 {
				s.srv.log.Warn("local copies delivered but relay refused; a retry will duplicate them", "id", id, "local", tx.local)
			}
			return fmt.Errorf("relay enqueue of %s: %w", id, err)
		}
		s.srv.log.Info("message queued for relay", "id", id, "queue_id", qid, "from", tx.from, "to", tx.remote)
	}
	s.srv.log.Info("message accepted", "session", s.info.ID, "id", id, "from", tx.from,
		"local", tx.local, "remote", len(tx.remote), "size", len(raw))
	return nil
}

// deliverLocal writes the message once and commits it to every local user
// at once (mailstore links one fsynced file into each INBOX).
func (s *session) deliverLocal(tx envelope, id, trace string, raw []byte) error {
	d, err := s.srv.opts.Store.BeginDelivery()
	if err != nil {
		return fmt.Errorf("begin delivery of %s: %w", id, err)
	}
	// Return-Path is added at final delivery (RFC 5321 §4.4).
	hdr := "Return-Path: <" + tx.from + ">\r\n" + trace
	if _, err := io.WriteString(d, hdr); err == nil {
		_, err = d.Write(raw)
	}
	if err == nil {
		err = d.Commit(s.srv.ctx, tx.local)
	}
	if err != nil {
		d.Abort()
		return fmt.Errorf("deliver %s to %v: %w", id, tx.local, err)
	}
	return nil
}

// dataReadError maps a failure to read message data to a reply.
func dataReadError(err error) error {
	var ne net.Error
	switch {
	case errors.Is(err, smtp.ErrTooLongLine):
		return errLineTooLong
	case errors.As(err, &ne) && ne.Timeout():
		return errDataTimeout
	}
	return err // ErrDataTooLarge, errBareLineEnd: replies already; others: failures
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

// checkFromHeader checks that the message has exactly one From: field and
// that may accepts every address in it (RFC 5322 §3.6.2).
func checkFromHeader(raw []byte, may func(addr string) bool) error {
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(headerSection(raw))))
	if err != nil {
		return errBadFrom
	}
	mh := mail.Header{Header: message.Header{Header: h}}
	if len(h.Values("From")) != 1 {
		return errBadFrom
	}
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

// headerSection returns raw up to and including the blank line that ends
// the header (or all of raw if there is none).
func headerSection(raw []byte) []byte {
	if bytes.HasPrefix(raw, []byte("\r\n")) {
		return raw[:2]
	}
	if i := bytes.Index(raw, []byte("\r\n\r\n")); i >= 0 {
		return raw[:i+4]
	}
	return raw
}
