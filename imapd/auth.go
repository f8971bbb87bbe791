package imapd

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/emersion/go-imap/v2"
	gosasl "github.com/emersion/go-sasl"

	"github.com/mailsuite/mailsuite/accounts"
	"github.com/mailsuite/mailsuite/internal/netlimit"
	"github.com/mailsuite/mailsuite/internal/sasl"
)

// go-imap refuses LOGIN and AUTHENTICATE (and advertises LOGINDISABLED)
// before TLS unless the engine has InsecureAuth, which Server sets only for
// loopback connections with AllowInsecureAuth (RFC 3501 §6.2.3, RFC 8314).

// Login implements LOGIN (RFC 3501 §6.2.3).
func (sess *session) Login(username, password string) error {
	return sess.do("login", "LOGIN "+quoteForLog(username)+" ***", func() error {
		user, err := sess.checkCredentials(func(ctx context.Context) (string, error) {
			return sess.srv.opts.Accounts.Authenticate(ctx, username, password)
		})
		sess.authOutcome(username, user, "LOGIN", err)
		if err != nil {
			return err
		}
		return sess.loggedIn(user)
	})
}

// AuthenticateMechanisms implements imapserver.SessionSASL.
func (sess *session) AuthenticateMechanisms() []string {
	return []string{sasl.Plain, sasl.Login, sasl.CRAMMD5}
}

// Authenticate implements AUTHENTICATE (RFC 3501 §6.2.2, SASL-IR RFC 4959).
// go-imap drives the exchange; the wrapper below throttles it and turns its
// outcome into a login.
func (sess *session) Authenticate(mech string) (gosasl.Server, error) {
	var srv gosasl.Server
	err := sess.do("authenticate", "AUTHENTICATE "+mech, func() error {
		a := &saslAuth{sess: sess, mech: mech}
		inner, err := sasl.NewServer(context.Background(), mech, sess.srv.opts.Accounts,
			sess.srv.opts.Hostname, func(user string) { a.user = user })
		if errors.Is(err, sasl.ErrUnknownMechanism) {
			return &imap.Error{Type: imap.StatusResponseTypeNo, Text: "Unsupported SASL mechanism"}
		} else if err != nil {
			return fmt.Errorf("starting SASL %s: %w", mech, err)
		}
		a.inner = inner
		srv = a
		return nil
	})
	return srv, err
}

// saslAuth wraps a SASL exchange with throttling, hooks and the login.
type saslAuth struct {
	sess    *session
	mech    string
	inner   gosasl.Server
	user    string
	checked bool
}

func (a *saslAuth) Next(response []byte) ([]byte, bool, error) {
	sess := a.sess
	if !a.checked {
		a.checked = true
		if err := sess.throttle(); err != nil {
			return nil, false, sess.reply("authenticate", err)
		}
	}
	challenge, done, err := a.inner.Next(response)
	if err != nil {
		sess.authOutcome("", "", a.mech, err)
		if !errors.Is(err, accounts.ErrAuthFailed) {
			// Malformed SASL payloads are failed logins, not server bugs.
			sess.srv.log.Info("SASL exchange failed", "session", sess.id, "mech", a.mech, "err", err)
			err = fmt.Errorf("%w: %v", accounts.ErrAuthFailed, err)
		}
		return nil, false, sess.reply("authenticate", err)
	}
	if !done {
		return challenge, false, nil
	}
	if a.user == "" {
		err := errors.New("SASL exchange ended without a user")
		return nil, false, sess.reply("authenticate", err)
	}
	sess.authOutcome("", a.user, a.mech, nil)
	if err := sess.loggedIn(a.user); err != nil {
		return nil, false, sess.reply("authenticate", err)
	}
	return challenge, true, nil
}

// checkCredentials throttles, then verifies within AuthTimeout.
func (sess *session) checkCredentials(verify func(context.Context) (string, error)) (string, error) {
	if err := sess.throttle(); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), sess.srv.opts.AuthTimeout)
	defer cancel()
	return verify(ctx)
}

// throttle applies the shared per-IP failure limiter (internal/authlimit).
func (sess *session) throttle() error {
	lim := sess.srv.opts.AuthLimit
	if lim == nil {
		return nil
	}
	wait, ok := lim.Check(netlimit.IP(sess.remote))
	if !ok {
		return errThrottled
	}
	if wait > 0 {
		time.Sleep(wait)
	}
	return nil
}

// authOutcome records the outcome with the limiter, the hook and the log.
func (sess *session) authOutcome(claimed, user, mech string, err error) {
	ok := err == nil
	if lim := sess.srv.opts.AuthLimit; lim != nil && !errors.Is(err, errThrottled) {
		if ok {
			lim.Succeeded(netlimit.IP(sess.remote))
		} else {
			lim.Failed(netlimit.IP(sess.remote))
		}
	}
	who := user
	if who == "" {
		who = claimed
	}
	if h := sess.srv.opts.Hooks.OnAuth; h != nil {
		h(sess.remote, who, mech, ok)
	}
	if !ok {
		sess.srv.log.Info("authentication failed", "session", sess.id, "remote", sess.remote.String(), "user", who, "mech", mech)
	}
}

// loggedIn opens the user's maildir (creating default folders on first use)
// and starts watching it for changes made elsewhere.
func (sess *session) loggedIn(user string) error {
	u, err := sess.srv.opts.Store.User(user)
	if err != nil {
		return fmt.Errorf("opening maildir of %s: %w", user, err)
	}
	sess.user = u
	sess.events, sess.cancelWatch = u.Watch()
	sess.mu.Lock()
	sess.name = user
	sess.mu.Unlock()
	return nil
}

// quoteForLog keeps hook lines readable and on one line.
func quoteForLog(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return fmt.Sprintf("%q", s)
}
