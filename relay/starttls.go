package relay

// go-smtp v0.25.1 can only STARTTLS inside NewClientStartTLS, which first
// says "EHLO localhost" and gives up when STARTTLS is not offered; so we
// speak the pre-TLS part ourselves (greeting, EHLO, STARTTLS, RFC 3207 §4)
// and hand go-smtp the connection with a synthetic greeting, after which it
// sends EHLO again (allowed by RFC 5321 §4.1.4, and required after TLS by
// RFC 3207 §4.2).

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
	"strings"
	"time"

	"github.com/emersion/go-smtp"
)

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
	if mode == tlsOff {
		return conn, TLSUsedNone, nil
	}
	conn.SetDeadline(time.Now().Add(q.opts.CommandTimeout))
	defer conn.SetDeadline(time.Time{})
	if mode == tlsImplicit {
		tc := tls.Client(conn, q.tlsConfig(host, nil))
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, "", fail("4.7.0", "TLS with %s: %v", host, err)
		}
		return tc, TLSUsedVerified, nil
	}
	// textproto has no line limit: cap what the server may send before
	// go-smtp (which has one) takes over.
	capped := &cappedReader{r: conn, left: 64 << 10}
	tp := textproto.NewReader(bufio.NewReader(capped))
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
		capped.left = -1
		return greeted(conn, tp), TLSUsedNone, nil
	}
	fmt.Fprintf(conn, "STARTTLS\r\n")
	if _, _, err := tp.ReadResponse(220); err != nil {
		if mode == tlsVerified || !isReply(err) {
			return nil, "", fail("4.7.10", "STARTTLS to %s: %v", host, err)
		}
		capped.left = -1
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

// cappedReader fails once left bytes have been read; left < 0 lifts the cap.
type cappedReader struct {
	r    io.Reader
	left int64
}

func (c *cappedReader) Read(p []byte) (int, error) {
	if c.left < 0 {
		return c.r.Read(p)
	}
	if c.left == 0 {
		return 0, errors.New("relay: server sent too much before the SMTP session proper")
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}
