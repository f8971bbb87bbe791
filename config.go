package mailsuite

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	"github.com/mailsuite/mailsuite/accounts"
)

// TLSMode is how a listener uses TLS. Each server package has its own
// TLSMode type; the wiring maps this one onto them.
type TLSMode string

const (
	TLSNone     TLSMode = "none"     // plaintext only
	TLSOptional TLSMode = "starttls" // STARTTLS/STLS offered
	TLSRequired TLSMode = "required" // STARTTLS/STLS before auth or mail
	TLSImplicit TLSMode = "implicit" // TLS from the first byte
)

// Config is mail.ini, typed. LoadConfig fills it; defaultConfig declares every
// default once.
type Config struct {
	Path string // the file it came from (absolute)

	Server      ServerConfig
	TLS         TLSFiles
	Limits      Limits
	SMTP        Listener // MX, port 25
	Submission  Listener // port 587
	Submissions Listener // port 465
	POP3        Listener
	POP3S       Listener
	IMAP        Listener
	IMAPS       Listener
	Relay       RelayConfig
	Log         LogConfig

	Users   []accounts.User
	Aliases map[string][]string // address or "@domain" (catch-all) → users

	// PlaintextPasswords lists users whose password is stored in clear, for
	// the start-up warning.
	PlaintextPasswords []string
}

// ServerConfig is [server].
type ServerConfig struct {
	Hostname string
	Domains  []string
	DataDir  string // absolute
	// PlaintextAuthOnLoopback lets clients on 127.0.0.0/8 and ::1 log in
	// without TLS (for local scripts). Never applies to other addresses.
	PlaintextAuthOnLoopback bool
	ShutdownGrace           time.Duration
}

// TLSFiles is [tls]. Empty paths mean a self-signed certificate kept in the
// data directory, made on first start.
type TLSFiles struct {
	CertFile, KeyFile string
}

// Limits is [limits].
type Limits struct {
	MaxMessageSize      int64
	MaxRecipients       int
	MaxLineLength       int
	MaxConnections      int
	MaxConnectionsPerIP int
	CommandTimeout      time.Duration
	DataTimeout         time.Duration
	POP3IdleTimeout     time.Duration
	IMAPIdleTimeout     time.Duration
	AuthFreeFailures    int
	AuthLockoutFailures int
	AuthLockoutWindow   time.Duration
	DefaultQuota        int64
}

// Listener is one of the seven listener sections. Listen empty disables it.
type Listener struct {
	Listen string
	TLS    TLSMode
	// SMTP only.
	Banner          string
	TrustedNetworks []netip.Prefix // MX: clients allowed to relay
	// POP3 only.
	MarkSeenOnRetr bool
}

// RelayConfig is [relay].
type RelayConfig struct {
	Smarthost         string
	SmarthostUser     string
	SmarthostPassword string
	SmarthostTLS      TLSMode
	DNSServer         string
	MXPort            int
	MaxAge            time.Duration
	RequireTLS        bool
	Workers           int
	DelayWarning      time.Duration
	DKIMSelector      string
}

// LogConfig is [log].
type LogConfig struct {
	Level      string // debug, info, warn, error
	Format     string // text or json
	Transcript string // file for protocol transcripts (credentials redacted); empty: off
}

func defaultConfig() *Config {
	return &Config{
		Server: ServerConfig{Hostname: "localhost", DataDir: "data", ShutdownGrace: 30 * time.Second},
		Limits: Limits{
			MaxMessageSize:      50 << 20,
			MaxRecipients:       100,
			MaxLineLength:       2000,
			MaxConnections:      500,
			MaxConnectionsPerIP: 20,
			CommandTimeout:      5 * time.Minute,
			DataTimeout:         10 * time.Minute,
			POP3IdleTimeout:     10 * time.Minute, // RFC 1939 §3
			IMAPIdleTimeout:     30 * time.Minute, // RFC 3501 §5.4
			AuthFreeFailures:    3,
			AuthLockoutFailures: 10,
			AuthLockoutWindow:   15 * time.Minute,
		},
		SMTP:        Listener{TLS: TLSOptional},
		Submission:  Listener{TLS: TLSRequired},
		Submissions: Listener{TLS: TLSImplicit},
		POP3:        Listener{TLS: TLSOptional, MarkSeenOnRetr: true},
		POP3S:       Listener{TLS: TLSImplicit, MarkSeenOnRetr: true},
		IMAP:        Listener{TLS: TLSOptional},
		IMAPS:       Listener{TLS: TLSImplicit},
		Relay: RelayConfig{
			SmarthostTLS: TLSOptional, MXPort: 25, MaxAge: 5 * 24 * time.Hour,
			Workers: 4, DKIMSelector: "mail",
		},
		Log:     LogConfig{Level: "info", Format: "text"},
		Aliases: map[string][]string{},
	}
}

// listeners names each listener section, in start order.
func (c *Config) listeners() []struct {
	Name string
	L    *Listener
} {
	return []struct {
		Name string
		L    *Listener
	}{
		{"smtp", &c.SMTP}, {"submission", &c.Submission}, {"submissions", &c.Submissions},
		{"pop3", &c.POP3}, {"pop3s", &c.POP3S}, {"imap", &c.IMAP}, {"imaps", &c.IMAPS},
	}
}

// AccountsConfig is the part of the config the accounts directory holds.
func (c *Config) AccountsConfig() accounts.Config {
	users := make([]accounts.User, len(c.Users))
	copy(users, c.Users)
	for i := range users {
		if users[i].Quota == 0 {
			users[i].Quota = c.Limits.DefaultQuota
		}
	}
	aliases := make(map[string][]string, len(c.Aliases))
	for k, v := range c.Aliases {
		aliases[k] = append([]string(nil), v...)
	}
	return accounts.Config{Domains: append([]string(nil), c.Server.Domains...), Users: users, Aliases: aliases}
}

// resolvePath makes p relative to the config file's directory.
func (c *Config) resolvePath(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(filepath.Dir(c.Path), p)
}

// configError names the file, line (when known), section and key.
type configError struct {
	file    string
	line    int
	section string
	key     string
	msg     string
}

func (e *configError) Error() string {
	var b strings.Builder
	b.WriteString(e.file)
	if e.line > 0 {
		fmt.Fprintf(&b, ":%d", e.line)
	}
	b.WriteString(": ")
	if e.section != "" {
		fmt.Fprintf(&b, "[%s] ", e.section)
	}
	if e.key != "" {
		fmt.Fprintf(&b, "%s: ", e.key)
	}
	b.WriteString(e.msg)
	return b.String()
}

// DemoUser is the shipped demo account that must not survive going live.
const DemoUser = "demo@example.com"

// Warnings lists things that work but that an admin should fix.
func (c *Config) Warnings() []string {
	var out []string
	for _, u := range c.PlaintextPasswords {
		out = append(out, fmt.Sprintf("user %s has a plain-text password in %s; replace it with `mailsuite user passwd %s`", u, c.Path, u))
	}
	if exposed := c.publicListeners(); len(exposed) > 0 {
		for _, u := range c.Users {
			if strings.EqualFold(u.Address, DemoUser) {
				out = append(out, fmt.Sprintf("!!! the demo user %s exists while %s listen beyond loopback: remove it from %s NOW (mailsuite user del %s) !!!",
					DemoUser, strings.Join(exposed, ", "), c.Path, DemoUser))
			}
		}
	}
	return out
}

// publicListeners names listeners bound to a non-loopback address.
func (c *Config) publicListeners() []string {
	var out []string
	for _, l := range c.listeners() {
		if l.L.Listen == "" {
			continue
		}
		host, _, _ := net.SplitHostPort(l.L.Listen)
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			out = append(out, "["+l.Name+"]")
		}
	}
	return out
}
