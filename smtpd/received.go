package smtpd

import (
	"context"
	"crypto/tls"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/mailsuite/mailsuite/internal/netlimit"
)

// traceInfo is what the Received header says about a message.
type traceInfo struct {
	Helo     string
	RDNS     string // "unknown" when not looked up or not found
	IP       net.IP
	Hostname string
	ID       string
	TLS      *tls.ConnectionState // nil without TLS
	User     string               // authenticated sender, "" if none
	Rcpts    []string
	Date     time.Time
}

// received formats a Received trace header (RFC 5321 §4.4) in the layout
// Postfix and Dovecot use, with the protocol keyword of RFC 3848 (ESMTP, +S
// with TLS, +A with AUTH). go-smtp does not tell EHLO from HELO, so the
// keyword is always ESMTP-based. "for" appears only with one recipient, so
// that a copy does not reveal the other (Bcc) recipients.
func received(t traceInfo) string {
	proto := "ESMTP"
	if t.TLS != nil {
		proto += "S"
	}
	if t.User != "" {
		proto += "A"
	}
	var b strings.Builder
	b.WriteString("Received: from ")
	b.WriteString(sanitize(t.Helo))
	b.WriteString(" (")
	b.WriteString(sanitize(t.RDNS))
	b.WriteString(" [")
	b.WriteString(ipLiteral(t.IP))
	b.WriteString("])\r\n\tby ")
	b.WriteString(t.Hostname)
	b.WriteString(" (mailsuite) with ")
	b.WriteString(proto)
	b.WriteString(" id ")
	b.WriteString(t.ID)
	if t.TLS != nil {
		b.WriteString("\r\n\t(using ")
		b.WriteString(strings.Replace(tls.VersionName(t.TLS.Version), "TLS ", "TLSv", 1))
		b.WriteString(" with cipher ")
		name := tls.CipherSuiteName(t.TLS.CipherSuite)
		b.WriteString(name)
		if bits := cipherBits(name); bits != "" {
			b.WriteString(" (" + bits + "/" + bits + " bits)")
		}
		b.WriteString(")")
	}
	if t.User != "" {
		b.WriteString("\r\n\t(Authenticated sender: ")
		b.WriteString(sanitize(t.User))
		b.WriteString(")")
	}
	if len(t.Rcpts) == 1 {
		b.WriteString("\r\n\tfor <")
		b.WriteString(sanitize(t.Rcpts[0]))
		b.WriteString(">; ")
	} else {
		b.WriteString(";\r\n\t")
	}
	b.WriteString(t.Date.Format(time.RFC1123Z)) // RFC 5322 §3.3 date-time
	b.WriteString("\r\n")
	return b.String()
}

// cipherBits returns the symmetric key size of a cipher suite, as Postfix
// prints it ("128/128"), or "" if unknown.
func cipherBits(name string) string {
	switch {
	case strings.Contains(name, "AES_128"):
		return "128"
	case strings.Contains(name, "AES_256"), strings.Contains(name, "CHACHA20"):
		return "256"
	case strings.Contains(name, "3DES"):
		return "168"
	}
	return ""
}

// ipLiteral writes an address as RFC 5321 §4.1.3 does inside brackets.
func ipLiteral(ip net.IP) string {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return "unknown"
	}
	a = a.Unmap()
	if a.Is6() {
		return "IPv6:" + a.String()
	}
	return a.String()
}

// sanitize keeps client-supplied text from breaking the header: no
// controls, no parentheses or brackets that would end a comment early.
func sanitize(s string) string {
	if s == "" {
		return "unknown"
	}
	return strings.Map(func(r rune) rune {
		if r < 0x21 || r == 0x7f || strings.ContainsRune("()[]<>;\\\"", r) {
			return '_'
		}
		return r
	}, s)
}

// reverseName looks up the client's host name once per connection, if a
// resolver is configured.
func (s *session) reverseName() string {
	if s.tc.rdns != "" {
		return s.tc.rdns
	}
	name := "unknown"
	if look := s.srv.opts.LookupAddr; look != nil {
		ctx, cancel := context.WithTimeout(s.srv.ctx, DefaultLookupTimeout)
		names, err := look(ctx, netlimit.IP(s.info.Remote).String())
		cancel()
		if err == nil && len(names) > 0 && names[0] != "" {
			name = strings.TrimSuffix(names[0], ".")
		}
	}
	s.tc.rdns = name
	return name
}

// trace gathers what received needs for message id.
func (s *session) trace(id string, rcpts []string) traceInfo {
	info := s.snapshot()
	t := traceInfo{
		Helo:     info.Helo,
		RDNS:     s.reverseName(),
		IP:       netlimit.IP(info.Remote),
		Hostname: s.srv.opts.Hostname,
		ID:       id,
		User:     info.User,
		Rcpts:    rcpts,
		Date:     s.srv.opts.Now(),
	}
	if st, ok := s.conn.TLSConnectionState(); ok {
		t.TLS = &st
	}
	return t
}
