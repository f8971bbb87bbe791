// Package tlsmode is the one TLS-mode type the three servers share. Each
// server re-exports it as its own TLSMode with constants documented for its
// protocol (what "required" forbids differs between SMTP, POP3 and IMAP),
// so embedders never name this package.
package tlsmode

import "fmt"

// Mode is how a listener uses TLS.
type Mode int

const (
	None     Mode = iota // plaintext only
	Optional             // STARTTLS/STLS offered
	Required             // STARTTLS/STLS offered and needed before login or mail
	Implicit             // TLS from the first byte (RFC 8314)
)

// String names the mode for logs.
func (m Mode) String() string {
	switch m {
	case None:
		return "none"
	case Optional:
		return "starttls"
	case Required:
		return "starttls-required"
	case Implicit:
		return "implicit"
	}
	return fmt.Sprintf("tlsmode.Mode(%d)", int(m))
}
