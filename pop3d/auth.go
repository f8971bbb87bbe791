package pop3d

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"strings"
	"time"

	gosasl "github.com/emersion/go-sasl"
	"github.com/mailsuite/mailsuite/accounts"
	"github.com/mailsuite/mailsuite/internal/netlimit"
	"github.com/mailsuite/mailsuite/internal/sasl"
)

// maxSASLRounds bounds a SASL exchange (LOGIN, the longest, needs 3).
const maxSASLRounds = 8

// authorizationCommand runs a command in the AUTHORIZATION state (RFC 1939
// §4, §7; RFC 2449 CAPA; RFC 2595 STLS; RFC 5034 AUTH).
func (c *conn) authorizationCommand(cmd command) (quit bool) {
	// RFC 1939 §7: PASS only immediately after a successful USER.
	user := c.userArg
	c.userArg = ""
	switch cmd.verb {
	case "CAPA":
		c.capa()
	case "QUIT":
		// RFC 1939 §6: QUIT in AUTHORIZATION does not enter UPDATE.
		c.reply("+OK " + c.srv.opts.Hostname + " POP3 server signing off")
		return true
	case "STLS":
		return c.stls(cmd)
	case "USER":
		if len(cmd.args) != 1 {
			return c.badCommand("USER needs one argument")
		}
		if !c.plaintextAllowed() {
			c.userArg = ""
			c.reply("-ERR USER/PASS needs TLS: use STLS")
			return false
		}
		c.userArg = cmd.args[0]
		c.reply("+OK send PASS")
	case "PASS":
		if user == "" {
			return c.badCommand("send USER first")
		}
		if cmd.rest == "" {
			return c.badCommand("PASS needs an argument")
		}
		if !c.plaintextAllowed() {
			c.reply("-ERR USER/PASS needs TLS: use STLS")
			return false
		}
		pass := cmd.rest
		return c.authenticate("USER", user, func(ctx context.Context) (string, error) {
			return c.sess.Login(ctx, user, pass)
		})
	case "AUTH":
		return c.auth(cmd)
	case "APOP":
		// See the package comment for why APOP is not offered.
		c.reply("-ERR APOP is not supported: use USER/PASS or AUTH over TLS")
	case "STAT", "LIST", "RETR", "DELE", "NOOP", "RSET", "TOP", "UIDL":
		return c.badCommand("not allowed before login")
	default:
		return c.badCommand("unknown command")
	}
	return false
}

// plaintextAllowed reports whether passwords may be sent in the clear here:
// over TLS, or on loopback when AllowInsecureAuth is set (RFC 2595 §2.2).
func (c *conn) plaintextAllowed() bool {
	return c.isTLS || c.srv.opts.AllowInsecureAuth && netlimit.IsLoopback(c.remote)
}

// stlsOffered reports whether STLS is available now (RFC 2595 §4).
func (c *conn) stlsOffered() bool {
	m := c.srv.opts.TLSMode
	return !c.isTLS && (m == TLSOptional || m == TLSRequired) && c.state == stateAuthorization
}

// mechanisms returns the SASL mechanisms usable now: plaintext ones only
// where plaintext passwords are allowed.
func (c *conn) mechanisms() []string {
	ss, ok := c.sess.(SessionSASL)
	if !ok {
		return nil
	}
	var out []string
	for _, m := range ss.AuthenticateMechanisms() {
		m = strings.ToUpper(m)
		if (m == sasl.Plain || m == sasl.Login) && !c.plaintextAllowed() {
			continue
		}
		out = append(out, m)
	}
	return out
}

// capa answers CAPA (RFC 2449 §5) with what is usable in the current state.
func (c *conn) capa() {
	c.reply("+OK capability list follows")
	caps := []string{"TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING",
		// RFC 2449 §6.7: we never delete messages on our own.
		"EXPIRE NEVER"}
	// With TLSRequired nothing authenticates before STLS: offer no way to.
	authNow := c.srv.opts.TLSMode != TLSRequired || c.isTLS
	if c.state == stateAuthorization && authNow {
		if c.plaintextAllowed() {
			caps = append(caps, "USER")
		}
		if m := c.mechanisms(); len(m) > 0 {
			caps = append(caps, "SASL "+strings.Join(m, " "))
		}
	}
	if c.stlsOffered() {
		caps = append(caps, "STLS")
	}
	if impl := c.srv.opts.Implementation; impl != "-" {
		caps = append(caps, "IMPLEMENTATION "+impl)
	}
	for _, cp := range caps {
		c.bw.WriteString(cp + "\r\n")
	}
	c.bw.WriteString(".\r\n")
}

// stls upgrades the connection (RFC 2595 §4).
func (c *conn) stls(cmd command) (quit bool) {
	if len(cmd.args) != 0 {
		return c.badCommand("STLS takes no argument")
	}
	if !c.stlsOffered() {
		c.reply("-ERR STLS not available")
		return false
	}
	c.reply("+OK begin TLS negotiation")
	if err := c.bw.Flush(); err != nil {
		return true
	}
	if n := c.lr.br.Buffered(); n > 0 {
		c.log().Warn("pop3: discarding plaintext pipelined after STLS", "octets", n)
	}
	tc := tls.Server(c.raw, c.srv.opts.TLSConfig)
	if err := c.handshake(tc); err != nil {
		return true
	}
	c.upgrade(tc)
	c.userArg = "" // RFC 2595 §4: forget what was said in plaintext
	return false
}

// auth runs AUTH (RFC 5034 §4), or lists the mechanisms when given none
// (the RFC 1734 form older clients use to probe).
func (c *conn) auth(cmd command) (quit bool) {
	mechs := c.mechanisms()
	if len(cmd.args) == 0 {
		c.reply("+OK SASL mechanisms follow")
		for _, m := range mechs {
			c.bw.WriteString(m + "\r\n")
		}
		c.bw.WriteString(".\r\n")
		return false
	}
	mech := strings.ToUpper(cmd.args[0])
	offered := false
	for _, m := range mechs {
		offered = offered || m == mech
	}
	if !offered {
		if mech == sasl.Plain || mech == sasl.Login {
			c.reply("-ERR " + mech + " needs TLS: use STLS")
			return false
		}
		c.reply("-ERR unsupported authentication mechanism")
		return false
	}
	var ir []byte
	if len(cmd.args) == 2 {
		// RFC 5034 §4: "=" is an empty initial response.
		if cmd.args[1] != "=" {
			b, err := base64.StdEncoding.DecodeString(cmd.args[1])
			if err != nil {
				c.reply("-ERR invalid base64 in initial response")
				return false
			}
			ir = b
		} else {
			ir = []byte{}
		}
	}
	ss := c.sess.(SessionSASL) // mechanisms() is empty otherwise
	return c.authenticate(mech, "", func(ctx context.Context) (string, error) {
		var user string
		srv, err := ss.Authenticate(ctx, mech, func(u string) { user = u })
		if err != nil {
			return "", err
		}
		resp := ir
		for round := 0; ; round++ {
			chal, done, err := srv.Next(resp)
			if err != nil {
				return "", err
			}
			if done {
				if user == "" {
					return "", errors.New("pop3d: SASL finished without a user")
				}
				return user, nil
			}
			if round >= maxSASLRounds {
				return "", protoErr("", "too many SASL rounds")
			}
			if resp, err = c.saslRound(chal); err != nil {
				return "", err
			}
		}
	})
}

var errSASLCancelled = protoErr("", "authentication cancelled")

// saslRound sends a challenge and reads the client's response line.
func (c *conn) saslRound(chal []byte) ([]byte, error) {
	c.reply("+ " + base64.StdEncoding.EncodeToString(chal))
	if err := c.bw.Flush(); err != nil {
		return nil, err
	}
	line, err := c.readCommand()
	if errors.Is(err, errLineTooLong) {
		return nil, protoErr("", "SASL response too long")
	}
	if err != nil {
		return nil, &connError{err}
	}
	if h := c.srv.opts.Hooks.OnCommand; h != nil {
		if line == "*" {
			h(c.id, line)
		} else {
			h(c.id, "<redacted>")
		}
	}
	if line == "*" {
		return nil, errSASLCancelled // RFC 5034 §4
	}
	b, err := base64.StdEncoding.DecodeString(line)
	if err != nil {
		return nil, protoErr("", "invalid base64 in SASL response")
	}
	return b, nil
}

// connError marks a read failure inside an exchange: the session ends.
type connError struct{ err error }

func (e *connError) Error() string { return e.err.Error() }
func (e *connError) Unwrap() error { return e.err }

// authenticate runs one login attempt with the per-IP throttle, then opens
// the maildrop and enters TRANSACTION (RFC 1939 §4).
func (c *conn) authenticate(mech, name string, verify func(context.Context) (string, error)) (quit bool) {
	ip := netlimit.IP(c.remote)
	lim := c.srv.opts.Limiter
	wait, ok := lim.Check(ip)
	if !ok {
		c.onAuth(name, mech, false)
		c.reply("-ERR [SYS/TEMP] too many failed logins, try again later")
		return true
	}
	if wait > 0 {
		c.bw.Flush()
		t := time.NewTimer(wait)
		<-t.C
	}
	user, err := verify(c.ctx)
	var ce *connError
	switch {
	case errors.As(err, &ce):
		return true
	case errors.Is(err, errSASLCancelled):
		c.reply(c.errorReply(err))
		return false
	case err != nil:
		var re *replyError
		if !errors.Is(err, accounts.ErrAuthFailed) && !errors.As(err, &re) && !isSASLClientError(err) {
			c.reply(c.errorReply(err)) // e.g. the directory failed: [SYS/TEMP]
			return false
		}
		lim.Failed(ip)
		c.onAuth(name, mech, false)
		c.fails++
		if re == nil {
			err = accounts.ErrAuthFailed // malformed SASL input says no more
		}
		c.reply(c.errorReply(err))
		// One reply per command: after the last allowed failure the
		// connection just closes.
		return c.fails >= c.srv.opts.MaxAuthFailures
	}
	lim.Succeeded(ip)
	c.onAuth(user, mech, true)
	if err := c.sess.Open(c.ctx, user); err != nil {
		c.reply(c.errorReply(err))
		return false
	}
	c.mu.Lock()
	c.user = user
	c.mu.Unlock()
	c.state = stateTransaction
	n, size, err := c.sess.Stat()
	if err != nil {
		c.reply(c.errorReply(err))
		return false
	}
	c.reply(plural("+OK maildrop has ", n, " message", " (") + itoa64(size) + " octets)")
	return false
}

func (c *conn) onAuth(user, mech string, ok bool) {
	if h := c.srv.opts.Hooks.OnAuth; h != nil {
		h(c.remote, user, mech, ok)
	}
}

// isSASLClientError reports whether the client's SASL message was
// malformed (a failed attempt, not a server fault).
func isSASLClientError(err error) bool {
	return errors.Is(err, sasl.ErrMalformed) || errors.Is(err, gosasl.ErrUnexpectedClientResponse)
}
