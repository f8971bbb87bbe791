package mailsuite

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/mailsuite/mailsuite/accounts"
	"github.com/mailsuite/mailsuite/imapd"
	"github.com/mailsuite/mailsuite/internal/tlsmode"
	"github.com/mailsuite/mailsuite/pop3d"
	"github.com/mailsuite/mailsuite/relay"
	"github.com/mailsuite/mailsuite/smtpd"
)

// newServer builds the server for one listener section. This is the one
// place that maps mail.ini onto each protocol package's Options.
func (s *Suite) newServer(name string, l Listener) (server, error) {
	c := s.cfg
	lim := c.Limits
	host := c.Server.Hostname
	insecure := c.Server.PlaintextAuthOnLoopback
	log := s.log.With("listener", name)
	switch name {
	case "smtp", "submission", "submissions":
		role := smtpd.RoleSubmission
		if name == "smtp" {
			role = smtpd.RoleMX
		}
		h := smtpd.Hooks{}
		if s.transcript != nil {
			h.OnCommand, h.OnReply = s.transcript.hooks(name)
		}
		return smtpd.New(smtpd.Options{
			Role: role, Hostname: host, Banner: l.Banner,
			TLSMode: serverTLS[l.TLS], TLSConfig: s.tls, AllowInsecureAuth: insecure,
			Directory: s.dir, Store: s.store, Relay: s.queue, AuthLimiter: s.limiter,
			TrustedNetworks: l.TrustedNetworks,
			MaxMessageBytes: lim.MaxMessageSize, MaxRecipients: lim.MaxRecipients,
			MaxLineLength: lim.MaxLineLength, MaxConns: lim.MaxConnections, MaxConnsPerIP: lim.MaxConnectionsPerIP,
			ReadTimeout: lim.CommandTimeout, DataTimeout: lim.DataTimeout,
			LookupAddr: net.DefaultResolver.LookupAddr,
			Logger:     log, Hooks: h,
		})
	case "pop3", "pop3s":
		h := pop3d.Hooks{}
		if s.transcript != nil {
			h.OnCommand, h.OnReply = s.transcript.hooks(name)
		}
		seen := l.MarkSeenOnRetr
		return pop3d.New(pop3d.Options{
			Hostname: host, Logger: log, Accounts: s.dir, Store: s.store, Limiter: s.limiter,
			TLSMode: serverTLS[l.TLS], TLSConfig: s.tls, AllowInsecureAuth: insecure,
			MarkSeenOnRetr: &seen, IdleTimeout: lim.POP3IdleTimeout,
			MaxConns: lim.MaxConnections, MaxConnsPerIP: lim.MaxConnectionsPerIP,
			Hooks: h,
		})
	case "imap", "imaps":
		h := imapd.Hooks{}
		if s.transcript != nil {
			h.OnCommand, h.OnReply = s.transcript.hooks(name)
		}
		return imapd.New(imapd.Options{
			Hostname: host, Accounts: s.dir, Store: s.store, AuthLimit: s.limiter,
			TLSMode: serverTLS[l.TLS], TLSConfig: s.tls, AllowInsecureAuth: insecure,
			AppendLimit: appendLimit(lim.MaxMessageSize),
			MaxConns:    lim.MaxConnections, MaxConnsPerIP: lim.MaxConnectionsPerIP,
			Logger: log, Hooks: h,
		})
	}
	return nil, fmt.Errorf("unknown listener %q", name)
}

var (
	// The three servers share one mode type (internal/tlsmode).
	serverTLS = map[TLSMode]tlsmode.Mode{TLSNone: tlsmode.None, TLSOptional: tlsmode.Optional, TLSRequired: tlsmode.Required, TLSImplicit: tlsmode.Implicit}
	// A smarthost gets our password, so STARTTLS to it is always required.
	relayTLS = map[TLSMode]relay.TLSMode{TLSNone: relay.TLSNone, TLSOptional: relay.TLSStartTLS, TLSRequired: relay.TLSStartTLS, TLSImplicit: relay.TLSImplicit}
)

func appendLimit(max int64) uint32 {
	if max <= 0 || max > 1<<32-1 {
		return 1<<32 - 1
	}
	return uint32(max)
}

func (s *Suite) newRelay() (*relay.Queue, error) {
	c := s.cfg
	return relay.New(relay.Options{
		DataDir:           c.Server.DataDir,
		Hostname:          c.Server.Hostname,
		LocalDomains:      c.Server.Domains,
		IsLocalDomain:     s.dir.IsLocalDomain,
		DeliverLocal:      s.deliverLocal,
		Workers:           c.Relay.Workers,
		RetrySchedule:     s.opts.RelayRetrySchedule,
		MaxAge:            c.Relay.MaxAge,
		DelayWarning:      c.Relay.DelayWarning,
		RequireTLS:        c.Relay.RequireTLS,
		Smarthost:         c.Relay.Smarthost,
		SmarthostUser:     c.Relay.SmarthostUser,
		SmarthostPassword: c.Relay.SmarthostPassword,
		SmarthostTLS:      relayTLS[c.Relay.SmarthostTLS],
		DNSServer:         c.Relay.DNSServer,
		MXPort:            c.Relay.MXPort,
		DKIMSelector:      c.Relay.DKIMSelector,
		Logger:            s.log.With("component", "relay"),
	})
}

// deliverLocal stores a message the relay generated (a bounce) for local
// recipients, durably, all or nothing.
func (s *Suite) deliverLocal(ctx context.Context, from string, to []string, msg []byte) error {
	var users []string
	seen := map[string]bool{}
	for _, rcpt := range to {
		owners, err := s.dir.Resolve(rcpt)
		if errors.Is(err, accounts.ErrNoSuchUser) || errors.Is(err, accounts.ErrNotLocal) {
			// The sender is gone (or never was ours): retrying cannot help.
			return relay.Permanent(fmt.Errorf("deliver to %s: %w", rcpt, err))
		}
		if err != nil {
			return fmt.Errorf("deliver to %s: %w", rcpt, err)
		}
		for _, u := range owners {
			if !seen[u] {
				seen[u] = true
				users = append(users, u)
			}
		}
	}
	d, err := s.store.BeginDelivery()
	if err != nil {
		return err
	}
	defer d.Abort()
	if _, err := d.Write(msg); err != nil {
		return err
	}
	return d.Commit(ctx, users)
}
