package pop3d

import (
	"crypto/tls"
	"log/slog"
	"net"
	"time"

	"github.com/mailsuite/mailsuite/accounts"
	"github.com/mailsuite/mailsuite/internal/authlimit"
	"github.com/mailsuite/mailsuite/internal/tlsmode"
	"github.com/mailsuite/mailsuite/mailstore"
)

// TLSMode says how a server uses TLS.
type TLSMode = tlsmode.Mode

const (
	// TLSNone: plaintext only, STLS not offered.
	TLSNone = tlsmode.None
	// TLSOptional: STLS offered (RFC 2595 §4); plaintext passwords still
	// need TLS (or loopback with AllowInsecureAuth).
	TLSOptional = tlsmode.Optional
	// TLSRequired: STLS offered and nothing but CAPA, STLS, NOOP and QUIT is
	// accepted before the upgrade.
	TLSRequired = tlsmode.Required
	// TLSImplicit: Serve wraps every accepted connection in TLS (port 995).
	TLSImplicit = tlsmode.Implicit
)

// Defaults, declared once. Zero values in Options select them.
const (
	DefaultIdleTimeout      = 10 * time.Minute // RFC 1939 §3: at least 10 minutes
	DefaultWriteTimeout     = 2 * time.Minute
	DefaultMaxLineLength    = 512  // RFC 2449 §4 allows 255 octets; leave room for sloppy clients
	DefaultMaxAuthLineLen   = 8192 // SASL responses (RFC 5034 §4) may be longer than commands
	DefaultMaxBadCommands   = 10
	DefaultMaxAuthFailures  = 3
	DefaultMaxConns         = 200
	DefaultMaxConnsPerIP    = 20
	DefaultImplementation   = "mailsuite"
	DefaultTLSHandshakeTime = 30 * time.Second
)

// Options configure a Server. New copies them; later changes have no effect.
type Options struct {
	// Hostname is used in the greeting and the CRAM-MD5 challenge.
	Hostname string
	// Logger receives the server's own log lines; default slog.Default().
	Logger *slog.Logger

	// Accounts verifies credentials and tells the server about removed or
	// disabled users, whose sessions are then closed. Required unless
	// NewSession is set.
	Accounts *accounts.Directory
	// Store holds the maildrops (each user's INBOX). Required unless
	// NewSession is set.
	Store *mailstore.Store
	// Limiter throttles authentication failures per client IP; shared with
	// the other protocols. Nil: a private limiter with default settings.
	Limiter *authlimit.Limiter
	// NewSession, if set, replaces the mailstore-backed session (embedders
	// with their own storage). The Session may also implement SessionSASL.
	NewSession func(c ConnInfo) (Session, error)

	// TLSMode and TLSConfig: see TLSMode. TLSConfig is required for every
	// mode but TLSNone.
	TLSMode   TLSMode
	TLSConfig *tls.Config
	// AllowInsecureAuth allows USER/PASS and AUTH PLAIN/LOGIN without TLS
	// on loopback connections only (never on other addresses).
	AllowInsecureAuth bool

	// MarkSeenOnRetr sets \Seen on messages retrieved in full with RETR
	// (not TOP), so IMAP clients see them as read. Nil means the default,
	// true. The flags are written in batches and when the session ends,
	// not one fsync per RETR.
	MarkSeenOnRetr *bool
	// Implementation is the CAPA IMPLEMENTATION string (RFC 2449 §6.9);
	// default "mailsuite". Set to "-" to omit the capability.
	Implementation string

	// IdleTimeout ends a session that sends nothing for this long
	// (default 10 minutes, the minimum RFC 1939 §3 allows).
	IdleTimeout time.Duration
	// WriteTimeout ends a session whose client stops reading for this long
	// in the middle of a reply (default 2 minutes).
	WriteTimeout time.Duration
	// TLSHandshakeTimeout bounds the TLS handshake of implicit TLS and
	// STLS (default 30s).
	TLSHandshakeTimeout time.Duration
	// MaxLineLength is the longest command line accepted, CRLF included
	// (default 512; RFC 2449 §4 says clients send at most 255).
	MaxLineLength int
	// MaxAuthLineLength is the longest AUTH command or SASL response line
	// (default 8192).
	MaxAuthLineLength int
	// MaxBadCommands is how many unknown, malformed, over-long or
	// out-of-state commands a session may send before it is disconnected
	// (default 10).
	MaxBadCommands int
	// MaxAuthFailures is how many failed logins one connection may make
	// before it is disconnected (default 3); the per-IP throttle is Limiter.
	MaxAuthFailures int
	// MaxConns and MaxConnsPerIP cap concurrent connections (defaults 200
	// and 20; negative means unlimited).
	MaxConns, MaxConnsPerIP int

	// Hooks are optional callbacks for embedders.
	Hooks Hooks
}

// Hooks are optional plain funcs; a nil hook costs nothing. They are called
// on the connection's goroutine (OnConnect on the accept loop) and must not
// block for long.
type Hooks struct {
	// OnConnect is asked about every new connection before the greeting;
	// false closes it at once.
	OnConnect func(remote net.Addr) bool
	// OnAuth reports every authentication attempt (USER/PASS as mech
	// "USER", AUTH with its mechanism name).
	OnAuth func(remote net.Addr, user, mech string, ok bool)
	// OnCommand sees every line the client sends, PASS arguments and SASL
	// payloads replaced by "<redacted>".
	OnCommand func(sessionID, line string)
	// OnReply sees every status line the server sends (+OK, -ERR and SASL
	// "+ " continuations), not the lines of multi-line bodies.
	OnReply func(sessionID, line string)
	// OnClose is called once when a session ends, however it ends.
	OnClose func(sessionID string)
	// OnError reports errors that ended a session or became an internal
	// error reply.
	OnError func(sessionID string, err error)
	// OnUpdate reports the UPDATE state (RFC 1939 §6): the user and how many
	// messages QUIT deleted, with the error if the deletion failed.
	OnUpdate func(sessionID, user string, deleted int, err error)
}

// withDefaults returns a copy of o with zero values replaced by defaults.
func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Hostname == "" {
		o.Hostname = "localhost"
	}
	if o.Implementation == "" {
		o.Implementation = DefaultImplementation
	}
	if o.MarkSeenOnRetr == nil {
		t := true
		o.MarkSeenOnRetr = &t
	} else {
		v := *o.MarkSeenOnRetr
		o.MarkSeenOnRetr = &v
	}
	setDur(&o.IdleTimeout, DefaultIdleTimeout)
	setDur(&o.WriteTimeout, DefaultWriteTimeout)
	setDur(&o.TLSHandshakeTimeout, DefaultTLSHandshakeTime)
	setInt(&o.MaxLineLength, DefaultMaxLineLength)
	setInt(&o.MaxAuthLineLength, DefaultMaxAuthLineLen)
	setInt(&o.MaxBadCommands, DefaultMaxBadCommands)
	setInt(&o.MaxAuthFailures, DefaultMaxAuthFailures)
	setInt(&o.MaxConns, DefaultMaxConns)
	setInt(&o.MaxConnsPerIP, DefaultMaxConnsPerIP)
	if o.MaxAuthLineLength < o.MaxLineLength {
		o.MaxAuthLineLength = o.MaxLineLength
	}
	if o.Limiter == nil {
		o.Limiter = authlimit.New(authlimit.Options{})
	}
	if o.TLSConfig != nil {
		o.TLSConfig = o.TLSConfig.Clone()
	}
	return o
}

func setDur(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

func setInt(v *int, def int) {
	if *v == 0 {
		*v = def
	}
}
