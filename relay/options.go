package relay

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"
)

// TLSMode is how the relay talks TLS to a smarthost.
type TLSMode int

const (
	// TLSStartTLS requires STARTTLS with a verified certificate (default).
	TLSStartTLS TLSMode = iota
	// TLSImplicit speaks TLS from the first byte (port 465), verified.
	TLSImplicit
	// TLSNone sends in clear (only sensible on a trusted network).
	TLSNone
)

// ParseTLSMode maps the config words "starttls", "implicit" and "none".
func ParseTLSMode(s string) (TLSMode, error) {
	switch strings.ToLower(s) {
	case "", "starttls", "required":
		return TLSStartTLS, nil
	case "implicit", "tls":
		return TLSImplicit, nil
	case "none":
		return TLSNone, nil
	}
	return 0, fmt.Errorf("relay: unknown TLS mode %q (want starttls, implicit or none)", s)
}

// DefaultRetrySchedule is the back-off between attempts; after the last
// step the last delay repeats until MaxAge.
var defaultRetrySchedule = []time.Duration{
	5 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 4 * time.Hour,
}

// DefaultRetrySchedule returns a copy of the default back-off steps.
func DefaultRetrySchedule() []time.Duration {
	return append([]time.Duration(nil), defaultRetrySchedule...)
}

// Options configures a Queue. New copies it; zero values take the defaults
// documented on each field.
type Options struct {
	// DataDir is the suite's data directory (required). The queue lives in
	// DataDir/queue, failed messages in DataDir/queue/failed, DKIM keys in
	// DataDir/dkim.
	DataDir string
	// Hostname is our EHLO name and the Reporting-MTA of DSNs (default:
	// os.Hostname).
	Hostname string
	// LocalDomains are the domains we receive mail for; the first one is
	// the postmaster's domain when Hostname's parent domain is not local.
	LocalDomains []string
	// IsLocalDomain, if set, overrides LocalDomains for "is this domain
	// ours" (so a reloaded account list takes effect at once).
	IsLocalDomain func(domain string) bool
	// DeliverLocal stores a message for local recipients (bounces to local
	// senders). If nil, local recipients are delivered by MX like others.
	DeliverLocal func(ctx context.Context, from string, to []string, msg []byte) error

	// Workers bounds concurrent deliveries (default 4).
	Workers int
	// RetrySchedule is the delay after attempt 1, 2, ...; the last step
	// repeats (default 5m, 15m, 30m, 1h, 2h, 4h).
	RetrySchedule []time.Duration
	// MaxAge is how long a message is retried before it bounces
	// (default 5 days).
	MaxAge time.Duration
	// DelayWarning, if positive, sends the sender one "delayed" DSN once a
	// message has been queued this long (default 0: off).
	DelayWarning time.Duration
	// RequireTLS refuses to deliver to an MX without a verified TLS
	// certificate (default false: opportunistic STARTTLS, unverified OK).
	RequireTLS bool

	// Smarthost (host:port), if set, receives all remote mail instead of
	// the recipients' MX hosts.
	Smarthost         string
	SmarthostUser     string // AUTH PLAIN or LOGIN when set
	SmarthostPassword string
	SmarthostTLS      TLSMode

	// DisableDKIM turns off signing (default: sign mail whose From domain
	// is local and has a key in DataDir/dkim).
	DisableDKIM bool
	// DKIMSelector picks the key <domain>.<selector>.key when a domain has
	// several (default: the greatest selector present).
	DKIMSelector string

	// DNSServer is the resolver to ask, host:port or a bare address for
	// port 53 (default: the first nameserver of /etc/resolv.conf).
	DNSServer string
	// DNSTimeout bounds one DNS query (default 5s).
	DNSTimeout time.Duration
	// MXPort is the port MX hosts are reached on (default 25).
	MXPort int
	// TLSConfig is the base client TLS config (RootCAs, MinVersion, ...).
	// For MX hosts verification is opportunistic: the result is recorded,
	// and enforced only with RequireTLS. For a smarthost it is enforced.
	TLSConfig *tls.Config
	// Dial opens connections (default: net.Dialer with ConnectTimeout).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// ConnectTimeout bounds a TCP connect (default 30s).
	ConnectTimeout time.Duration
	// CommandTimeout bounds each SMTP reply (default 5m, RFC 5321 §4.5.3.2).
	CommandTimeout time.Duration

	// ScanInterval is how often the queue directory is rescanned even
	// without a wake-up (default 1m).
	ScanInterval time.Duration
	// WakePoll is how often the .wake file (touched by the admin CLI from
	// another process) is checked (default 1s).
	WakePoll time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// NewID makes queue IDs (default: time + random). IDs must match
	// [A-Za-z0-9][A-Za-z0-9._-]{0,63}.
	NewID func() string
	// Logger receives the queue's log (default slog.Default()).
	Logger *slog.Logger
}

// withDefaults returns a copy of o with defaults filled in.
func (o Options) withDefaults() (Options, error) {
	if o.DataDir == "" {
		return o, fmt.Errorf("relay: Options.DataDir is required")
	}
	if o.Hostname == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "localhost"
		}
		o.Hostname = h
	}
	o.LocalDomains = append([]string(nil), o.LocalDomains...)
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if len(o.RetrySchedule) == 0 {
		o.RetrySchedule = defaultRetrySchedule
	}
	o.RetrySchedule = append([]time.Duration(nil), o.RetrySchedule...)
	if o.MaxAge <= 0 {
		o.MaxAge = 5 * 24 * time.Hour
	}
	if o.Smarthost != "" {
		host, _, err := net.SplitHostPort(o.Smarthost)
		if err != nil {
			return o, fmt.Errorf("relay: smarthost %q: %w", o.Smarthost, err)
		}
		// A password never crosses the network in clear (Postfix refuses
		// plaintext SASL without TLS by default too); loopback is no network.
		if o.SmarthostTLS == TLSNone && o.SmarthostUser != "" && !isLoopbackHost(host) {
			return o, fmt.Errorf("relay: smarthost %s: with TLS mode none the password would be sent in clear; use starttls or implicit", o.Smarthost)
		}
	}
	if o.DNSServer != "" {
		if _, _, err := net.SplitHostPort(o.DNSServer); err != nil {
			o.DNSServer = net.JoinHostPort(o.DNSServer, "53") // a bare address
		}
	}
	if o.DNSTimeout <= 0 {
		o.DNSTimeout = 5 * time.Second
	}
	if o.MXPort <= 0 {
		o.MXPort = 25
	}
	if o.TLSConfig != nil {
		o.TLSConfig = o.TLSConfig.Clone()
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 30 * time.Second
	}
	if o.Dial == nil {
		d := &net.Dialer{Timeout: o.ConnectTimeout}
		o.Dial = d.DialContext
	}
	if o.CommandTimeout <= 0 {
		o.CommandTimeout = 5 * time.Minute
	}
	if o.ScanInterval <= 0 {
		o.ScanInterval = time.Minute
	}
	if o.WakePoll <= 0 {
		o.WakePoll = time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.NewID == nil {
		o.NewID = newID
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o, nil
}

// retryDelay is the wait after the given attempt number (1-based).
func (o *Options) retryDelay(attempt int) time.Duration {
	i := min(max(attempt, 1), len(o.RetrySchedule)) - 1
	return o.RetrySchedule[i]
}

// isLocal reports whether domain is one of ours.
func (o *Options) isLocal(domain string) bool {
	domain = strings.ToLower(domain)
	if o.IsLocalDomain != nil {
		return o.IsLocalDomain(domain)
	}
	for _, d := range o.LocalDomains {
		if strings.EqualFold(d, domain) {
			return true
		}
	}
	return false
}

// postmaster is the From of DSNs: postmaster at Hostname's parent domain
// if that is local, else at the first local domain, else at Hostname.
func (o *Options) postmaster() string {
	if _, parent, ok := strings.Cut(o.Hostname, "."); ok && o.isLocal(parent) {
		return "postmaster@" + strings.ToLower(parent)
	}
	if len(o.LocalDomains) > 0 {
		return "postmaster@" + strings.ToLower(o.LocalDomains[0])
	}
	return "postmaster@" + o.Hostname
}

func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
