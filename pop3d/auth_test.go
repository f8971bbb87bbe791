package pop3d

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mailsuite/mailsuite/internal/authlimit"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// baseCaps are listed in every state (RFC 2449 §6).
const baseCaps = "TOP|UIDL|RESP-CODES|AUTH-RESP-CODE|PIPELINING|EXPIRE NEVER"

// wantCapa sends CAPA and checks the list, joined with "|".
func (c *client) wantCapa(want string) {
	c.t.Helper()
	c.send("CAPA")
	c.expect("+OK capability list follows")
	if got := strings.Join(c.multi(), "|"); got != want {
		c.t.Errorf("CAPA %q, want %q", got, want)
	}
}

// TestCapa: what CAPA lists depends on TLS and state (RFC 2449 §5, RFC 2595).
func TestCapa(t *testing.T) {
	env := startServer(t)
	c := env.dial()
	c.expect("+OK pop.example.org")
	c.wantCapa(baseCaps + "|SASL CRAM-MD5|STLS|IMPLEMENTATION mailsuite")
	c.stls(env.clientTLS)
	c.wantCapa(baseCaps + "|USER|SASL PLAIN LOGIN CRAM-MD5|IMPLEMENTATION mailsuite")
	c.run(`
C: USER alice@example.org
C: PASS correct horse
S: +OK
S: +OK
`)
	c.wantCapa(baseCaps + "|IMPLEMENTATION mailsuite")
}

// TestPlaintextAuthRefused: no plaintext passwords without TLS (RFC 2595
// §2.2), except on loopback with AllowInsecureAuth.
func TestPlaintextAuthRefused(t *testing.T) {
	env := startServer(t)
	c := env.dial()
	c.expect("+OK")
	c.run(`
C: USER alice@example.org
S= -ERR USER/PASS needs TLS: use STLS
C: PASS correct horse
S: -ERR send USER first
C: AUTH PLAIN ` + b64("\x00alice@example.org\x00correct horse") + `
S= -ERR PLAIN needs TLS: use STLS
C: AUTH LOGIN
S= -ERR LOGIN needs TLS: use STLS
C: AUTH
S: +OK
S= CRAM-MD5
S= .
C: APOP alice@example.org c4c9334bac560ecc979e58001b3e22fb
S: -ERR APOP is not supported
C: STAT
S: -ERR not allowed before login
C: QUIT
S: +OK
`)

	insecure := startServer(t, func(o *Options) { o.AllowInsecureAuth = true })
	c = insecure.dial()
	c.run(`
S: +OK
C: CAPA
S: +OK
S: ...
C: USER alice@example.org
C: PASS correct horse
S: +OK
S= +OK maildrop has 0 messages (0 octets)
`)
}

// TestTLSRequired: nothing but CAPA, STLS, NOOP and QUIT before STLS.
func TestTLSRequired(t *testing.T) {
	env := startServer(t, func(o *Options) { o.TLSMode = TLSRequired; o.AllowInsecureAuth = true })
	c := env.dial()
	c.expect("+OK")
	c.wantCapa(baseCaps + "|STLS|IMPLEMENTATION mailsuite")
	c.run(`
C: USER alice@example.org
S= -ERR must issue STLS first
C: AUTH CRAM-MD5
S= -ERR must issue STLS first
C: NOOP
S: -ERR not allowed before login
`)
	c.stls(env.clientTLS)
	c.run(`
C: STLS
S= -ERR STLS not available
C: USER alice@example.org
C: PASS correct horse
S: +OK
S: +OK maildrop has
`)
}

// TestSTLSInjection: plaintext pipelined after STLS is discarded, not run
// inside the TLS session (RFC 2595 §4, CVE-2011-0411).
func TestSTLSInjection(t *testing.T) {
	var commands []string
	env := startServer(t, func(o *Options) {
		o.Hooks.OnCommand = func(id, line string) { commands = append(commands, line) }
	})
	c := env.dial()
	c.expect("+OK")
	c.send("STLS", "USER alice@example.org", "CAPA")
	c.expect("+OK begin TLS")
	tc := tls.Client(c.nc, env.clientTLS)
	tc.SetDeadline(time.Now().Add(5 * time.Second))
	if err := tc.Handshake(); err != nil {
		t.Fatalf("handshake after injected plaintext: %v", err)
	}
	c.nc, c.r = tc, newReader(tc)
	c.run(`
C: PASS correct horse
S= -ERR send USER first
`)
	if strings.Join(commands, "|") != "STLS|PASS <redacted>" {
		t.Fatalf("commands seen: %q", commands)
	}
}

// TestImplicitTLS: TLSImplicit wraps the connection before the greeting.
func TestImplicitTLS(t *testing.T) {
	env := startServer(t, func(o *Options) { o.TLSMode = TLSImplicit })
	nc, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", env.addr, env.clientTLS)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c := &client{t: t, nc: nc, r: newReader(nc)}
	c.expect("+OK pop.example.org POP3 server ready")
	c.wantCapa(baseCaps + "|USER|SASL PLAIN LOGIN CRAM-MD5|IMPLEMENTATION mailsuite")
	c.run(`
C: STLS
S= -ERR STLS not available
C: AUTH PLAIN ` + b64("\x00bob@example.org\x00hunter2") + `
S: +OK maildrop has 0 messages
`)
}

// TestAuthMechanisms: each SASL mechanism (RFC 5034), with and without an
// initial response, cancel with "*", bad base64 and bad credentials.
func TestAuthMechanisms(t *testing.T) {
	env := startServer(t)
	cases := map[string]func(c *client){
		"PLAIN initial response": func(c *client) {
			c.run(`
C: AUTH PLAIN ` + b64("\x00alice@example.org\x00correct horse") + `
S: +OK maildrop has`)
		},
		"PLAIN continuation": func(c *client) {
			c.run(`
C: AUTH plain
S: +
C: ` + b64("\x00alice@example.org\x00correct horse") + `
S: +OK maildrop has`)
		},
		"PLAIN authzid equal to authcid": func(c *client) {
			c.run(`
C: AUTH PLAIN ` + b64("alice@example.org\x00alice@example.org\x00correct horse") + `
S: +OK maildrop has`)
		},
		"LOGIN": func(c *client) {
			c.send("AUTH LOGIN")
			c.expect("+ " + b64("Username:"))
			c.send(b64(alice))
			c.expect("+ " + b64("Password:"))
			c.send(b64(alicePass))
			c.expect("+OK maildrop has")
		},
		"LOGIN initial response": func(c *client) {
			c.send("AUTH LOGIN " + b64(alice))
			c.expect("+ " + b64("Password:"))
			c.send(b64(alicePass))
			c.expect("+OK maildrop has")
		},
		"CRAM-MD5": func(c *client) {
			c.send("AUTH CRAM-MD5")
			l := c.expect("+ ")
			chal, err := base64.StdEncoding.DecodeString(l[2:])
			if err != nil || !strings.Contains(string(chal), "pop.example.org") {
				t.Fatalf("challenge %q: %v", chal, err)
			}
			mac := hmac.New(md5.New, []byte(alicePass))
			mac.Write(chal)
			c.send(b64(alice + " " + hex.EncodeToString(mac.Sum(nil))))
			c.expect("+OK maildrop has")
		},
		"cancel": func(c *client) {
			c.run(`
C: AUTH PLAIN
S: +
C: *
S= -ERR authentication cancelled
C: AUTH PLAIN ` + b64("\x00alice@example.org\x00correct horse") + `
S: +OK maildrop has`)
		},
		"bad base64": func(c *client) {
			c.run(`
C: AUTH PLAIN !!!!
S= -ERR invalid base64 in initial response
C: AUTH PLAIN
S: +
C: %%%
S= -ERR invalid base64 in SASL response`)
		},
		"wrong password": func(c *client) {
			c.run(`
C: AUTH PLAIN ` + b64("\x00alice@example.org\x00wrong") + `
S= -ERR [AUTH] authentication failed
C: USER alice@example.org
C: PASS wrong
S: +OK
S= -ERR [AUTH] authentication failed
C: USER nobody@example.org
C: PASS correct horse
S: +OK
S= -ERR [AUTH] authentication failed`)
			c.expectClosed()
		},
		"PASS only right after USER": func(c *client) {
			c.run(`
C: USER alice@example.org
C: CAPA
S: +OK
S: ...
C: PASS correct horse
S= -ERR send USER first`)
		},
		"unknown mechanism": func(c *client) {
			c.run(`
C: AUTH GSSAPI
S= -ERR unsupported authentication mechanism`)
		},
	}
	for name, fn := range cases {
		t.Run(name, func(t *testing.T) {
			c := env.dial()
			c.t = t
			c.expect("+OK")
			c.stls(env.clientTLS)
			fn(c)
			c.nc.Close()
		})
	}
}

// TestAuthThrottle: failures feed the shared per-IP limiter, which then
// refuses further attempts with [SYS/TEMP].
func TestAuthThrottle(t *testing.T) {
	lim := authlimit.New(authlimit.Options{FreeFailures: 1, Delay: time.Millisecond, MaxDelay: time.Millisecond,
		LockoutFailures: 2, Window: time.Minute})
	env := startServer(t, func(o *Options) { o.Limiter = lim; o.MaxAuthFailures = 10 })
	c := env.dial()
	c.expect("+OK")
	c.stls(env.clientTLS)
	c.run(`
C: USER alice@example.org
C: PASS nope
S: +OK
S= -ERR [AUTH] authentication failed
C: USER alice@example.org
C: PASS nope
S: +OK
S= -ERR [AUTH] authentication failed
C: USER alice@example.org
C: PASS correct horse
S: +OK
S= -ERR [SYS/TEMP] too many failed logins, try again later
`)
	c.expectClosed()
}
