package imapd

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

// TLSMode says how a listener uses TLS.
type TLSMode = tlsmode.Mode

const (
	// TLSNone offers no TLS. Authentication is possible only on loopback
	// connections and only with AllowInsecureAuth.
	TLSNone = tlsmode.None
	// TLSOptional offers STARTTLS (RFC 3501 §6.2.1); until the client
	// upgrades, LOGIN and AUTHENTICATE are refused and LOGINDISABLED is
	// advertised, except on loopback with AllowInsecureAuth.
	TLSOptional = tlsmode.Optional
	// TLSRequired offers STARTTLS and refuses authentication before it,
	// even on loopback (AllowInsecureAuth is ignored).
	TLSRequired = tlsmode.Required
	// TLSImplicit wraps every accepted connection in TLS (port 993, RFC 8314).
	TLSImplicit = tlsmode.Implicit
)

// Defaults, declared once. New applies them to zero fields.
const (
	DefaultHostname      = "localhost"
	DefaultAppendLimit   = 50 << 20 // octets; advertised as APPENDLIMIT (RFC 7889)
	DefaultMaxConns      = 1000
	DefaultMaxConnsPerIP = 100 // an office behind one NAT address, ~5 per Thunderbird
	DefaultAuthTimeout   = 10 * time.Second
)

// Options configure a Server. New copies them; later changes to the caller's
// struct have no effect.
type Options struct {
	// Hostname is used in CRAM-MD5 challenges and logs (default "localhost").
	Hostname string
	// Accounts checks credentials and tells which users were removed or
	// disabled (their sessions are then closed). Required.
	Accounts *accounts.Directory
	// Store holds the mail. Required.
	Store *mailstore.Store
	// AuthLimit throttles authentication failures per IP, shared with the
	// other protocols. Nil: no throttling (tests only).
	AuthLimit *authlimit.Limiter

	// TLSMode and TLSConfig: see TLSMode. TLSConfig is required unless
	// TLSMode is TLSNone.
	TLSMode   TLSMode
	TLSConfig *tls.Config
	// AllowInsecureAuth allows LOGIN/AUTHENTICATE without TLS on loopback
	// connections only (never for remote clients). Default false.
	AllowInsecureAuth bool

	// AppendLimit is the largest message APPEND accepts, in octets
	// (default DefaultAppendLimit; advertised as APPENDLIMIT=n).
	AppendLimit uint32
	// MaxConns and MaxConnsPerIP cap open connections (defaults
	// DefaultMaxConns, DefaultMaxConnsPerIP; negative: unlimited).
	MaxConns, MaxConnsPerIP int
	// AuthTimeout bounds one credentials check (default DefaultAuthTimeout).
	// go-imap fixes the other timeouts: 30 s per command line, 35 min idle
	// between commands once authenticated (RFC 3501 §5.4), 5 min per literal.
	AuthTimeout time.Duration

	// Logger receives the server's own log lines (default slog.Default()).
	Logger *slog.Logger
	// Hooks are optional callbacks for embedders; nil ones cost nothing.
	Hooks Hooks
}

// Hooks let an embedder watch and veto. They run on the connection's
// goroutine (OnConnect on the accept loop) and must be quick.
type Hooks struct {
	// OnConnect is asked about each new connection before the greeting;
	// false closes it at once.
	OnConnect func(remote net.Addr) bool
	// OnAuth reports every LOGIN/AUTHENTICATE outcome. user is what the
	// client claimed (or the canonical address on success).
	OnAuth func(remote net.Addr, user, mech string, ok bool)
	// OnCommand is called once per command go-imap hands to the session,
	// with a readable line such as "SELECT INBOX" or "UID FETCH 1:* (FLAGS)";
	// passwords and SASL payloads never appear.
	OnCommand func(sessionID, line string)
	// OnReply is called after each such command with its outcome: "OK",
	// or "NO [CODE] text" / "BAD text" as sent to the client.
	OnReply func(sessionID, line string)
	// OnClose is called when a session ends.
	OnClose func(sessionID string)
	// OnError is called with internal errors (those the client sees only
	// as "[UNAVAILABLE] ... (ID)").
	OnError func(sessionID string, err error)
}

// withDefaults returns a copy of o with defaults applied.
func (o Options) withDefaults() Options {
	if o.Hostname == "" {
		o.Hostname = DefaultHostname
	}
	if o.AppendLimit == 0 {
		o.AppendLimit = DefaultAppendLimit
	}
	if o.MaxConns == 0 {
		o.MaxConns = DefaultMaxConns
	}
	if o.MaxConnsPerIP == 0 {
		o.MaxConnsPerIP = DefaultMaxConnsPerIP
	}
	if o.AuthTimeout == 0 {
		o.AuthTimeout = DefaultAuthTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}
