package relay

// One SMTP session with one host through go-smtp's client: EHLO, AUTH
// (smarthost), MAIL, RCPT per recipient, DATA.

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"golang.org/x/net/idna"
)

// tryHost runs one SMTP transaction. Per-recipient answers go into res; the
// returned error is a failure of the whole session (try the next host if
// temporary). nil means every recipient got an answer, except those a 452
// "too many recipients" left for another transaction.
func (q *Queue) tryHost(ctx context.Context, e *Envelope, host, addr, port string, smart bool, rcpts []string,
	msg *message, res map[string]outcome, noTLS bool) *deliveryError {
	conn, err := q.opts.Dial(ctx, "tcp", net.JoinHostPort(addr, port))
	if err != nil {
		de := tempErr("4.4.1", "connect to %s [%s]: %v", host, addr, err)
		de.remote = host
		return de
	}
	defer conn.Close()
	conn = &remoteConn{Conn: conn, timeout: q.opts.CommandTimeout, readLeft: maxSessionRead}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	mode := tlsOpportunistic
	switch {
	case smart && q.opts.SmarthostTLS == TLSNone, noTLS:
		mode = tlsOff
	case smart && q.opts.SmarthostTLS == TLSImplicit:
		mode = tlsImplicit
	case smart, q.opts.RequireTLS:
		mode = tlsVerified
	}
	sc, tlsUsed, de := q.openSession(ctx, conn, host, mode)
	if de == errRetryPlain {
		conn.Close()
		return q.tryHost(ctx, e, host, addr, port, smart, rcpts, msg, res, true)
	}
	if de != nil {
		return de
	}
	c := smtp.NewClient(sc)
	c.CommandTimeout = q.opts.CommandTimeout
	c.SubmissionTimeout = 2 * q.opts.CommandTimeout // RFC 5321 §4.5.3.2.6: 10 min
	defer c.Close()
	if err := c.Hello(q.opts.Hostname); err != nil {
		return asTemp(classify(err, host, "EHLO to"))
	}
	if smart && q.opts.SmarthostUser != "" {
		if de := q.auth(c, host); de != nil {
			return de
		}
	}
	// SIZE (RFC 1870) lets the remote refuse a too large message up front.
	mopts := &smtp.MailOptions{Size: msg.size()}
	from := wireAddr(e.From)
	utf8 := !isASCII(from)
	for _, r := range rcpts {
		utf8 = utf8 || !isASCII(wireAddr(r))
	}
	mopts.UTF8 = utf8
	if ok, _ := c.Extension("SMTPUTF8"); utf8 && !ok {
		// RFC 6531 §3.2: no SMTPUTF8, no delivery. (Any other error of
		// Mail, a lost connection say, is temporary like everywhere.)
		c.Quit()
		return &deliveryError{status: "5.6.7", diag: "x-mailsuite; " + host + " does not support SMTPUTF8", remote: host}
	}
	if err := c.Mail(from, mopts); err != nil {
		// A 4xx tries the next host; a 5xx fails the whole group.
		return classify(err, host, "MAIL FROM to")
	}
	var accepted []string
	for _, r := range rcpts {
		if err := c.Rcpt(wireAddr(r), nil); err != nil {
			de := classify(err, host, "RCPT TO to")
			var se *smtp.SMTPError
			if !errors.As(err, &se) {
				return de
			}
			if se.Code == 452 && len(accepted) > 0 {
				// RFC 5321 §4.5.3.1.10: too many recipients; send to
				// those accepted, the caller opens another transaction
				// for the rest (left without a result).
				break
			}
			res[r] = withTLS(errOutcome(de), tlsUsed)
			continue
		}
		accepted = append(accepted, r)
	}
	if len(accepted) == 0 {
		c.Quit()
		return nil
	}
	finalErr := func(err error) *deliveryError {
		de := classify(err, host, "DATA to")
		if !errors.As(err, new(*smtp.SMTPError)) {
			return de
		}
		for _, r := range accepted {
			res[r] = withTLS(errOutcome(de), tlsUsed)
		}
		return nil
	}
	// Open before DATA: once DATA is accepted, only a dropped connection
	// (never the final dot) may abort the transaction.
	rd, err := msg.open()
	if err != nil {
		c.Quit()
		return tempErr("4.3.0", "read queued message: %v", err)
	}
	defer rd.Close()
	w, err := c.Data()
	if err != nil {
		return finalErr(err)
	}
	if _, err := io.Copy(w, rd); err != nil {
		return classify(err, host, "sending message to") // c.Close drops the line
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		return finalErr(err)
	}
	for _, r := range accepted {
		res[r] = outcome{state: StateDelivered, status: "2.0.0", remote: host, tls: tlsUsed,
			diag: "smtp; 250 " + oneLine(resp.StatusText)}
	}
	c.Quit()
	return nil
}

func asTemp(de *deliveryError) *deliveryError {
	if de.Temporary() {
		return de
	}
	// A 5xx greeting or EHLO is one host's refusal: try the next host.
	return &deliveryError{status: "4" + de.status[1:], diag: de.diag, remote: de.remote}
}

func withTLS(o outcome, t string) outcome {
	o.tls = t
	return o
}

func (q *Queue) auth(c *smtp.Client, host string) *deliveryError {
	var a sasl.Client
	switch {
	case c.SupportsAuth("PLAIN"):
		a = sasl.NewPlainClient("", q.opts.SmarthostUser, q.opts.SmarthostPassword)
	case c.SupportsAuth("LOGIN"):
		a = sasl.NewLoginClient(q.opts.SmarthostUser, q.opts.SmarthostPassword)
	default:
		return &deliveryError{status: "4.7.0", diag: "x-mailsuite; smarthost " + host + " offers no AUTH PLAIN or LOGIN", remote: host}
	}
	if err := c.Auth(a); err != nil {
		// Wrong credentials are the admin's to fix: keep retrying.
		return asTemp(classify(err, host, "AUTH to"))
	}
	return nil
}

// wireAddr is an address as sent in MAIL or RCPT: a Unicode domain behind
// an ASCII local part goes out as A-labels (RFC 5890), so that only a
// non-ASCII local part needs SMTPUTF8 (RFC 6531 §3.2).
func wireAddr(a string) string {
	at := strings.LastIndexByte(a, '@')
	if at < 0 || !isASCII(a[:at]) || isASCII(a[at+1:]) {
		return a
	}
	domain, err := idna.Lookup.ToASCII(a[at+1:])
	if err != nil {
		return a
	}
	return a[:at+1] + domain
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// maxSessionRead caps what one session may read from the remote. A client
// session reads only replies, a few kilobytes (plus a TLS handshake); go-smtp's
// reader has no limit of its own, so without this a server streaming one
// endless reply would grow our memory until CommandTimeout.
const maxSessionRead = 1 << 20

var errReadTooMuch = errors.New("relay: remote sent too much (over 1 MiB in one session)")

// remoteConn guards a connection to a remote server: every write is bounded
// by timeout (go-smtp puts deadlines on commands and replies but none on the
// message itself, so a remote that stops reading in DATA would hold a
// worker until shutdown; RFC 5321 §4.5.3.2.5 gives a data block 3
// minutes), and reads stop after readLeft bytes.
type remoteConn struct {
	net.Conn
	timeout  time.Duration
	readLeft int
}

func (c *remoteConn) Write(p []byte) (int, error) {
	c.Conn.SetWriteDeadline(time.Now().Add(c.timeout))
	return c.Conn.Write(p)
}

func (c *remoteConn) Read(p []byte) (int, error) {
	if c.readLeft <= 0 {
		return 0, errReadTooMuch
	}
	n, err := c.Conn.Read(p[:min(len(p), c.readLeft)])
	c.readLeft -= n
	return n, err
}
