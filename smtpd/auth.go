package smtpd

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	gosasl "github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/mailsuite/mailsuite/internal/netlimit"
	"github.com/mailsuite/mailsuite/internal/sasl"
)

var mechanisms = []string{sasl.Plain, sasl.Login, sasl.CRAMMD5}

// authAllowed: AUTH only over TLS, or on loopback when AllowInsecureAuth
// says so (RFC 4954 §4: no plaintext passwords in the clear).
func (s *session) authAllowed() bool {
	o := &s.srv.opts
	if o.Role != RoleSubmission {
		return false // MX offers no AUTH
	}
	return s.info.TLS || o.AllowInsecureAuth && netlimit.IsLoopback(s.info.Remote)
}

// AuthMechanisms lists what EHLO advertises (none where AUTH is not allowed).
func (s *session) AuthMechanisms() []string {
	if !s.authAllowed() {
		return nil
	}
	return mechanisms
}

// Auth starts an AUTH exchange (RFC 4954). The verdict is reported when the
// returned server finishes; see authServer.
func (s *session) Auth(mech string) (gosasl.Server, error) {
	cmd := "AUTH " + mech // never the initial response
	s.command(cmd)
	o := &s.srv.opts
	switch {
	case o.Role != RoleSubmission:
		return nil, s.answer(cmd, errAuthNotOffered, "", s.info.ID)
	case !s.authAllowed():
		return nil, s.answer(cmd, errEncryptionReq, "", s.info.ID)
	}
	ip := netlimit.IP(s.info.Remote)
	var wait time.Duration
	if o.AuthLimiter != nil {
		w, ok := o.AuthLimiter.Check(ip)
		if !ok {
			s.srv.log.Warn("smtp auth refused: too many failures", "session", s.info.ID, "remote", s.info.Remote.String(), "mech", mech)
			if h := o.Hooks.OnAuth; h != nil {
				h(s.info.Remote, "", mech, false)
			}
			return nil, s.answer(cmd, errAuthThrottled, "", s.info.ID)
		}
		wait = w
	}
	a := &authServer{s: s, mech: mech, ip: ip, wait: wait}
	srv, err := sasl.NewServer(s.srv.ctx, mech, (*recordingVerifier)(a), s.srv.opts.Hostname, func(user string) {
		a.mu.Lock()
		a.ok = user
		a.mu.Unlock()
	})
	if err != nil {
		if errors.Is(err, sasl.ErrUnknownMechanism) {
			err = smtp.ErrAuthUnknownMechanism
		}
		return nil, s.answer(cmd, err, "", s.info.ID)
	}
	a.inner = srv
	return a, nil
}

// authServer wraps the SASL exchange to apply the throttle's delay before
// the verdict, record the result and report it.
type authServer struct {
	s     *session
	inner gosasl.Server
	mech  string
	ip    net.IP
	wait  time.Duration

	mu   sync.Mutex
	name string // the user name the client gave
	ok   string // canonical user, set by the SASL server on success
}

func (a *authServer) Next(response []byte) (challenge []byte, done bool, err error) {
	challenge, done, err = a.inner.Next(response)
	if err == nil && !done {
		return challenge, false, nil
	}
	// The verdict: delay it as the throttle asks, success or not, so that
	// a fast answer does not tell a guesser it was right.
	if a.wait > 0 {
		t := time.NewTimer(a.wait)
		select {
		case <-t.C:
		case <-a.s.srv.ctx.Done():
			t.Stop()
		}
	}
	s, o := a.s, &a.s.srv.opts
	a.mu.Lock()
	name, user := a.name, a.ok
	a.mu.Unlock()
	success := err == nil && user != ""
	if h := o.Hooks.OnAuth; h != nil {
		h(s.info.Remote, name, a.mech, success)
	}
	if !success {
		if o.AuthLimiter != nil {
			o.AuthLimiter.Failed(a.ip)
		}
		// Logged here, once; the reply carries no detail.
		s.srv.log.Warn("smtp auth failed", "session", s.info.ID, "remote", s.info.Remote.String(), "user", name, "mech", a.mech, "err", err)
		s.replied(replyLine(errAuthFailed))
		return nil, false, errAuthFailed
	}
	if o.AuthLimiter != nil {
		o.AuthLimiter.Succeeded(a.ip)
	}
	s.mu.Lock()
	s.info.User = user
	s.mu.Unlock()
	s.srv.trackUser(s, user)
	s.srv.log.Info("smtp auth ok", "session", s.info.ID, "remote", s.info.Remote.String(), "user", user, "mech", a.mech)
	s.replied("235 2.0.0 Authentication succeeded")
	return challenge, true, nil
}

// recordingVerifier notes the user name a client tries before the
// directory checks it, for logs and OnAuth.
type recordingVerifier authServer

func (v *recordingVerifier) note(name string) {
	v.mu.Lock()
	v.name = name
	v.mu.Unlock()
}

func (v *recordingVerifier) Authenticate(ctx context.Context, username, password string) (string, error) {
	v.note(username)
	return v.s.srv.opts.Directory.Authenticate(ctx, username, password)
}

func (v *recordingVerifier) VerifyCRAMMD5(username, challenge, digestHex string) (string, error) {
	v.note(username)
	return v.s.srv.opts.Directory.VerifyCRAMMD5(username, challenge, digestHex)
}
