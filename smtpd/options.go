package smtpd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/mailsuite/mailsuite/accounts"
	"github.com/mailsuite/mailsuite/internal/authlimit"
	"github.com/mailsuite/mailsuite/internal/tlsmode"
	"github.com/mailsuite/mailsuite/mailstore"
)

// Role selects what a listener is for.
type Role int

const (
	// RoleMX receives mail for local recipients from anyone (port 25).
	RoleMX Role = iota
	// RoleSubmission accepts mail from authenticated users (587, 465).
	RoleSubmission
)

func (r Role) String() string {
	if r == RoleSubmission {
		return "submission"
	}
	return "mx"
}

// TLSMode says how a listener uses TLS.
type TLSMode = tlsmode.Mode

const (
	// TLSNone: plaintext only, STARTTLS not offered.
	TLSNone = tlsmode.None
	// TLSOptional: STARTTLS offered (RFC 3207), mail accepted without it.
	TLSOptional = tlsmode.Optional
	// TLSRequired: STARTTLS offered and required before MAIL and AUTH.
	TLSRequired = tlsmode.Required
	// TLSImplicit: every connection starts with a TLS handshake (RFC 8314).
	TLSImplicit = tlsmode.Implicit
)

// Relay takes messages for remote recipients. Enqueue must have stored the
// message durably before it returns nil; smtpd replies 250 only after that.
// msg is the message with smtpd's Received header prepended.
type Relay interface {
	Enqueue(ctx context.Context, from string, to []string, msg io.Reader) (queueID string, err error)
}

// Defaults for the zero values of Options. A negative limit means unlimited.
const (
	DefaultMaxMessageBytes = 25 << 20         // octets, advertised in EHLO SIZE (RFC 1870)
	DefaultMaxRecipients   = 100              // RFC 5321 §4.5.3.1.8 minimum
	DefaultMaxLineLength   = 2000             // RFC 5321 §4.5.3.1.6 limit (1000) doubled, as go-smtp does
	DefaultMaxConns        = 100              // connections in total
	DefaultMaxConnsPerIP   = 20               // connections per client IP
	DefaultReadTimeout     = 5 * time.Minute  // per command (RFC 5321 §4.5.3.2.7)
	DefaultWriteTimeout    = 1 * time.Minute  // per reply
	DefaultDataTimeout     = 10 * time.Minute // per read of message data (RFC 5321 §4.5.3.2.7)
	DefaultLookupTimeout   = 2 * time.Second  // reverse DNS for the Received header
)

// Options configure a Server. New copies them; zero values take the
// Default* constants above.
type Options struct {
	// Role is RoleMX (default) or RoleSubmission.
	Role Role
	// Hostname names this server in the greeting, EHLO reply, Received
	// headers and CRAM-MD5 challenges. Default: os.Hostname().
	Hostname string
	// Banner is extra greeting text: "220 <Hostname> <Banner> ESMTP Service
	// Ready" (go-smtp appends the last two words). Empty: none.
	Banner string

	// TLSMode and TLSConfig: TLSConfig is required unless TLSMode is TLSNone.
	TLSMode   TLSMode
	TLSConfig *tls.Config
	// AllowInsecureAuth allows AUTH without TLS on loopback connections only.
	AllowInsecureAuth bool

	// Directory resolves recipients, checks credentials and sender
	// addresses. Nil makes a standalone receiver (Hooks decide; see the
	// package doc); RoleSubmission requires it.
	Directory *accounts.Directory
	// Store receives local mail. Required when Directory is set.
	Store *mailstore.Store
	// Relay takes remote recipients (submission, trusted networks). Nil:
	// remote recipients are refused with 550 5.7.1. Used only with a
	// Directory (without one there is no local/remote distinction).
	Relay Relay
	// AuthLimiter throttles AUTH failures per client IP. Nil: no throttle.
	AuthLimiter *authlimit.Limiter
	// TrustedNetworks may relay through RoleMX without AUTH. Default: none.
	TrustedNetworks []netip.Prefix

	// MaxMessageBytes limits a message's size (SIZE, DATA, BDAT).
	MaxMessageBytes int64
	// MaxRecipients limits RCPT commands per message (452 4.5.3).
	MaxRecipients int
	// MaxLineLength limits command and message lines, CRLF included.
	MaxLineLength int
	// MaxConns and MaxConnsPerIP limit open connections; excess ones are
	// closed before the greeting.
	MaxConns      int
	MaxConnsPerIP int
	// ReadTimeout waits for a command, WriteTimeout for a reply to be sent,
	// DataTimeout for each read of message data.
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	DataTimeout  time.Duration

	// LookupAddr finds the client's host name for the Received header
	// (e.g. net.DefaultResolver.LookupAddr). Nil: "unknown", no DNS.
	LookupAddr func(ctx context.Context, addr string) ([]string, error)
	// Now is the clock for Received dates. Default time.Now.
	Now func() time.Time
	// Logger for connection-level events. Default slog.Default().
	Logger *slog.Logger

	// Hooks let an embedder watch and steer sessions.
	Hooks Hooks
}

// withDefaults returns a copy of o with defaults filled in and validated.
func (o Options) withDefaults() (Options, error) {
	if o.Hostname == "" {
		h, err := os.Hostname()
		if err != nil {
			return o, fmt.Errorf("smtpd: no Hostname and os.Hostname failed: %w", err)
		}
		o.Hostname = h
	}
	setDefault(&o.MaxMessageBytes, DefaultMaxMessageBytes)
	setDefault(&o.MaxRecipients, DefaultMaxRecipients)
	setDefault(&o.MaxLineLength, DefaultMaxLineLength)
	setDefault(&o.MaxConns, DefaultMaxConns)
	setDefault(&o.MaxConnsPerIP, DefaultMaxConnsPerIP)
	setDefault(&o.ReadTimeout, DefaultReadTimeout)
	setDefault(&o.WriteTimeout, DefaultWriteTimeout)
	setDefault(&o.DataTimeout, DefaultDataTimeout)
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	o.TrustedNetworks = append([]netip.Prefix(nil), o.TrustedNetworks...)
	if o.TLSConfig != nil {
		o.TLSConfig = o.TLSConfig.Clone()
	}
	switch {
	case strings.ContainsFunc(o.Hostname, unsafeRune) || strings.ContainsRune(o.Hostname, ' '):
		return o, fmt.Errorf("smtpd: Hostname %q has spaces or control characters", o.Hostname)
	case strings.ContainsFunc(o.Banner, unsafeRune):
		return o, fmt.Errorf("smtpd: Banner %q has control characters", o.Banner)
	case o.TLSMode < TLSNone || o.TLSMode > TLSImplicit:
		return o, fmt.Errorf("smtpd: unknown TLSMode %d", o.TLSMode)
	case o.TLSMode != TLSNone && o.TLSConfig == nil:
		return o, errors.New("smtpd: TLSConfig is required with a TLS mode")
	case o.Role != RoleMX && o.Role != RoleSubmission:
		return o, fmt.Errorf("smtpd: unknown Role %d", o.Role)
	case o.Role == RoleSubmission && o.Directory == nil:
		return o, errors.New("smtpd: RoleSubmission needs a Directory to authenticate users")
	case o.Directory != nil && o.Store == nil:
		return o, errors.New("smtpd: a Directory needs a Store to deliver to")
	case o.Directory == nil && o.Hooks.OnMessage == nil:
		return o, errors.New("smtpd: without a Directory, Hooks.OnMessage must take the mail")
	}
	return o, nil
}

// unsafeRune: control characters could end or split a reply line.
func unsafeRune(r rune) bool { return r < 0x20 || r == 0x7f }

// setDefault replaces zero with def and negative ("unlimited") with zero,
// which is what go-smtp and netlimit take as unlimited.
func setDefault[T int | int64 | time.Duration](v *T, def T) {
	switch {
	case *v == 0:
		*v = def
	case *v < 0:
		*v = 0
	}
}
