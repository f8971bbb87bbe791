package relay

// The SMTP client side of delivery. go-smtp v0.25.1 can only STARTTLS
// inside NewClientStartTLS, which first says "EHLO localhost" and gives up
// when STARTTLS is not offered; so we speak the pre-TLS part ourselves
// (greeting, EHLO, STARTTLS, RFC 3207 §4) and hand go-smtp the connection
// with a synthetic greeting, after which it sends EHLO again (allowed by
// RFC 5321 §4.1.4 and required after TLS by RFC 3207 §4.2).

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// deliverRemote sends one group by MX (or smarthost) and returns every
// recipient's outcome.
func (q *Queue) deliverRemote(ctx context.Context, e *Envelope, g group, msg *message) map[string]outcome {
	res := map[string]outcome{}
	setAll := func(rcpts []string, de *deliveryError) {
		for _, a := range rcpts {
			if _, done := res[a]; !done {
				res[a] = errOutcome(de)
			}
		}
	}
	smart := g.domain == ""
	var hosts []string
	port := strconv.Itoa(q.opts.MXPort)
	implicit := false
	if smart {
		h, p, _ := net.SplitHostPort(q.opts.Smarthost)
		hosts, port = []string{h}, p
	} else {
		var err error
		hosts, err = q.mxHosts(ctx, g.domain)
		if err != nil {
			setAll(g.rcpts, asDeliveryError(err))
			return res
		}
		implicit = len(hosts) == 1 && hosts[0] == g.domain
	}
	var lastErr *deliveryError
	remaining := g.rcpts
	for _, host := range hosts {
		addrs, err := q.hostAddrs(ctx, host)
		if err != nil {
			de := asDeliveryError(err)
			if !implicit && !smart && !de.Temporary() {
				// A broken MX record is the domain's problem, maybe
				// fixed soon; only a missing domain is final.
				de = tempErr("4.4.4", "MX host %s: %s", host, de.diag)
			}
			lastErr = de
			continue
		}
		for _, addr := range addrs {
			if ctx.Err() != nil {
				setAll(remaining, tempErr("4.4.1", "delivery cut off: %v", ctx.Err()))
				return res
			}
			de := q.tryHost(ctx, e, host, addr, port, smart, remaining, msg, res, false)
			if de == nil {
				return res
			}
			lastErr = de
			remaining = remaining[:0:0]
			for _, a := range g.rcpts {
				if _, done := res[a]; !done {
					remaining = append(remaining, a)
				}
			}
			if !de.Temporary() || len(remaining) == 0 {
				setAll(remaining, de)
				return res
			}
		}
	}
	if lastErr == nil {
		lastErr = tempErr("4.4.4", "no usable mail server for %s", g.domain)
	}
	setAll(remaining, lastErr)
	return res
}

func asDeliveryError(err error) *deliveryError {
	var de *deliveryError
	if errors.As(err, &de) {
		return de
	}
	return tempErr("4.0.0", "%v", err)
}

func errOutcome(de *deliveryError) outcome {
	st := StatePending
	if !de.Temporary() {
		st = StateFailed
	}
	return outcome{state: st, status: de.status, diag: de.diag, remote: de.remote}
}

// replyError turns an SMTP reply into a deliveryError (RFC 3463 status
// from the enhanced code, or class.0.0 without one).
func replyError(se *smtp.SMTPError, host string) *deliveryError {
	class := se.Code / 100
	if class != 4 && class != 5 {
		class = 4 // an unexpected code is a protocol error: retry
	}
	status := fmt.Sprintf("%d.0.0", class)
	ec := se.EnhancedCode
	if ec != smtp.EnhancedCodeNotSet && ec != smtp.NoEnhancedCode && ec[0] == class {
		status = fmt.Sprintf("%d.%d.%d", ec[0], ec[1], ec[2])
	}
	text := oneLine(se.Message)
	if ec != smtp.EnhancedCodeNotSet && ec != smtp.NoEnhancedCode {
		text = fmt.Sprintf("%d.%d.%d %s", ec[0], ec[1], ec[2], text)
	}
	return &deliveryError{status: status, diag: fmt.Sprintf("smtp; %d %s", se.Code, text), remote: host}
}

// classify maps an error of the SMTP conversation: replies keep their
// class, anything else (I/O, timeouts) is a temporary host failure.
func classify(err error, host, what string) *deliveryError {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return replyError(se, host)
	}
	de := tempErr("4.4.2", "%s %s: %v", what, host, err)
	de.remote = host
	return de
}

// tryHost runs one SMTP session. Per-recipient answers go into res; the
// returned error is a failure of the whole session (try the next host if
// temporary), nil when every recipient got an answer.
func (q *Queue) tryHost(ctx context.Context, e *Envelope, host, addr, port string, smart bool, rcpts []string,
	msg *message, res map[string]outcome, noTLS bool) *deliveryError {
	conn, err := q.opts.Dial(ctx, "tcp", net.JoinHostPort(addr, port))
	if err != nil {
		de := tempErr("4.4.1", "connect to %s [%s]: %v", host, addr, err)
		de.remote = host
		return de
	}
	defer conn.Close()
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
	utf8 := !isASCII(e.From) || !isASCII(strings.Join(rcpts, ""))
	mopts.UTF8 = utf8
	if err := c.Mail(e.From, mopts); err != nil {
		if utf8 && !errors.As(err, new(*smtp.SMTPError)) {
			// RFC 6531 §3.2: no SMTPUTF8, no delivery.
			return &deliveryError{status: "5.6.7", diag: "x-mailsuite; " + host + " does not support SMTPUTF8", remote: host}
		}
		// A 4xx tries the next host; a 5xx fails the whole group.
		return classify(err, host, "MAIL FROM to")
	}
	var accepted []string
	for _, r := range rcpts {
		if err := c.Rcpt(r, nil); err != nil {
			de := classify(err, host, "RCPT TO to")
			if !errors.As(err, new(*smtp.SMTPError)) {
				return de
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
	w, err := c.Data()
	if err != nil {
		return finalErr(err)
	}
	rd, err := msg.open()
	if err != nil {
		w.Close()
		return tempErr("4.3.0", "read queued message: %v", err)
	}
	_, err = io.Copy(w, rd)
	rd.Close()
	if err != nil {
		return classify(err, host, "sending message to")
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

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

type tlsMode int

const (
	tlsOff           tlsMode = iota
	tlsOpportunistic         // STARTTLS if offered, any certificate
	tlsVerified              // STARTTLS required, certificate verified
	tlsImplicit              // TLS from the start, verified
)

var errRetryPlain = &deliveryError{status: "4.7.0", diag: "x-mailsuite; TLS handshake failed, retrying without TLS"}

// openSession does everything before go-smtp takes over and returns the
// connection to hand it, and how it is protected.
func (q *Queue) openSession(ctx context.Context, conn net.Conn, host string, mode tlsMode) (net.Conn, string, *deliveryError) {
	fail := func(status, format string, args ...any) *deliveryError {
		de := tempErr(status, format, args...)
		de.remote = host
		return de
	}
	switch mode {
	case tlsOff:
		return conn, TLSUsedNone, nil
	case tlsImplicit:
		tc := tls.Client(conn, q.tlsConfig(host, nil))
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, "", fail("4.7.0", "TLS with %s: %v", host, err)
		}
		return tc, TLSUsedVerified, nil
	}
	conn.SetDeadline(time.Now().Add(q.opts.CommandTimeout))
	defer conn.SetDeadline(time.Time{})
	tp := textproto.NewReader(bufio.NewReader(conn))
	if _, _, err := tp.ReadResponse(220); err != nil {
		return nil, "", asTemp(classify(toSMTPError(err), host, "greeting of"))
	}
	fmt.Fprintf(conn, "EHLO %s\r\n", q.opts.Hostname)
	_, ehlo, err := tp.ReadResponse(250)
	offered := err == nil && hasExtension(ehlo, "STARTTLS")
	if err != nil && !isReply(err) {
		return nil, "", fail("4.4.2", "EHLO to %s: %v", host, err)
	}
	if !offered {
		if mode == tlsVerified {
			return nil, "", fail("4.7.10", "%s does not offer STARTTLS and TLS is required", host)
		}
		return greeted(conn, tp), TLSUsedNone, nil
	}
	fmt.Fprintf(conn, "STARTTLS\r\n")
	if _, _, err := tp.ReadResponse(220); err != nil {
		if mode == tlsVerified || !isReply(err) {
			return nil, "", fail("4.7.10", "STARTTLS to %s: %v", host, err)
		}
		return greeted(conn, tp), TLSUsedNone, nil
	}
	if tp.R.Buffered() > 0 {
		// RFC 3207 §6: nothing may be read in clear after STARTTLS.
		return nil, "", fail("4.7.0", "%s sent data after STARTTLS", host)
	}
	verified := false
	var cfg *tls.Config
	if mode == tlsVerified {
		cfg = q.tlsConfig(host, nil)
	} else {
		cfg = q.tlsConfig(host, &verified)
	}
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		if mode == tlsOpportunistic {
			q.log.Warn("STARTTLS handshake failed, retrying in clear", "host", host, "err", err)
			return nil, "", errRetryPlain
		}
		return nil, "", fail("4.7.0", "TLS with %s: %v", host, err)
	}
	used := TLSUsedUnverified
	if verified || mode == tlsVerified {
		used = TLSUsedVerified
	}
	return greeted(tc, nil), used, nil
}

// tlsConfig is the client config for host. With verified non-nil the
// certificate is checked but not enforced, and *verified says how it went.
func (q *Queue) tlsConfig(host string, verified *bool) *tls.Config {
	cfg := &tls.Config{}
	if q.opts.TLSConfig != nil {
		cfg = q.opts.TLSConfig.Clone()
	}
	cfg.ServerName = host
	if verified != nil {
		roots := cfg.RootCAs
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return nil
			}
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{DNSName: host, Roots: roots, Intermediates: inter})
			*verified = err == nil
			return nil
		}
	}
	return cfg
}

func hasExtension(ehlo, ext string) bool {
	for _, line := range strings.Split(ehlo, "\n")[1:] {
		if f := strings.Fields(line); len(f) > 0 && strings.EqualFold(f[0], ext) {
			return true
		}
	}
	return false
}

func isReply(err error) bool {
	var pe *textproto.Error
	return errors.As(err, &pe)
}

func toSMTPError(err error) error {
	var pe *textproto.Error
	if errors.As(err, &pe) {
		return &smtp.SMTPError{Code: pe.Code, Message: pe.Msg}
	}
	return err
}

// greetedConn replays a greeting, then any bytes already buffered, then
// the connection.
type greetedConn struct {
	net.Conn
	r io.Reader
}

func (g *greetedConn) Read(p []byte) (int, error) { return g.r.Read(p) }

func greeted(conn net.Conn, tp *textproto.Reader) net.Conn {
	// Reading on through the bufio.Reader keeps anything it buffered.
	var rest io.Reader = conn
	if tp != nil {
		rest = tp.R
	}
	return &greetedConn{Conn: conn, r: io.MultiReader(strings.NewReader("220 mailsuite-relay resumed\r\n"), rest)}
}
