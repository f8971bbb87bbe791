package smtpd

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mailsuite/mailsuite/accounts"
	"github.com/mailsuite/mailsuite/internal/authlimit"
)

// submission is a submission listener with STARTTLS.
func submission(t *testing.T) func(*Options) {
	return func(o *Options) {
		o.Role = RoleSubmission
		o.TLSMode = TLSOptional
		o.TLSConfig = serverTLS(t)
	}
}

// tlsAuth brings a submission session to "authenticated as alice".
func tlsAuth(user, pass string) []step {
	return []step{
		s("EHLO client.test", `STARTTLS`),
		s("STARTTLS", `^220 `),
		s("<starttls>"),
		s("EHLO client.test", `AUTH PLAIN LOGIN CRAM-MD5`),
		s("AUTH PLAIN "+plainIR(user, pass), `^235 2\.7\.0|^235 2\.0\.0`),
	}
}

func TestSubmissionTranscripts(t *testing.T) {
	sub := submission(t)
	tests := []struct {
		name  string
		edit  func(*Options)
		steps []step
	}{
		{"no AUTH before TLS", sub, []step{
			s("EHLO client.test", `STARTTLS`),
			s("AUTH PLAIN "+plainIR("alice@example.com", "alicepw"), `^538 5\.7\.11`),
			s("MAIL FROM:<alice@example.com>", `^530 5\.7\.0 Authentication required`),
		}},
		{"AUTH PLAIN initial response", sub, append(tlsAuth("alice@example.com", "alicepw"),
			s("MAIL FROM:<alice@example.com>", `^250 `),
			s("RCPT TO:<bob@example.com>", `^250 `),
			s("DATA", `^354 `),
			s(msg("alice@example.com", "bob@example.com", "s", "b"), `^250 2\.0\.0 OK`),
		)},
		{"AUTH PLAIN after 334", sub, []step{
			s("EHLO client.test", `^250-`),
			s("STARTTLS", `^220 `),
			s("<starttls>"),
			s("EHLO client.test", `AUTH `),
			s("AUTH PLAIN", `^334 $|^334$`),
			s(plainIR("bob@example.com", "bobpw"), `^235 `),
			s("MAIL FROM:<bob@example.com>", `^250 `),
		}},
		{"AUTH LOGIN", sub, []step{
			s("EHLO client.test", `^250-`),
			s("STARTTLS", `^220 `),
			s("<starttls>"),
			s("EHLO client.test", `^250-`),
			s("AUTH LOGIN", `^334 VXNlcm5hbWU6$`),
			s(b64("alice@example.com"), `^334 UGFzc3dvcmQ6$`),
			s(b64("alicepw"), `^235 `),
		}},
		{"AUTH LOGIN initial response", sub, []step{
			s("EHLO client.test", `^250-`),
			s("STARTTLS", `^220 `),
			s("<starttls>"),
			s("EHLO client.test", `^250-`),
			s("AUTH LOGIN "+b64("alice@example.com"), `^334 UGFzc3dvcmQ6$`),
			s(b64("alicepw"), `^235 `),
		}},
		{"AUTH CRAM-MD5", sub, []step{
			s("EHLO client.test", `^250-`),
			s("STARTTLS", `^220 `),
			s("<starttls>"),
			s("EHLO client.test", `^250-`),
			cram("carol@example.org", "carolpw", `^235 `),
			s("MAIL FROM:<carol@example.org>", `^250 `),
		}},
		{"AUTH CRAM-MD5 wrong password", sub, []step{
			s("EHLO client.test", `^250-`),
			s("STARTTLS", `^220 `),
			s("<starttls>"),
			s("EHLO client.test", `^250-`),
			cram("carol@example.org", "nope", `^535 5\.7\.8`),
		}},
		{"wrong password", sub, []step{
			s("EHLO client.test", `^250-`),
			s("STARTTLS", `^220 `),
			s("<starttls>"),
			s("EHLO client.test", `^250-`),
			s("AUTH PLAIN "+plainIR("alice@example.com", "wrong"), `^535 5\.7\.8`),
			s("AUTH PLAIN "+plainIR("nobody@example.com", "wrong"), `^535 5\.7\.8`),
			s("MAIL FROM:<alice@example.com>", `^530 5\.7\.0`),
		}},
		{"unknown mechanism", sub, []step{
			s("EHLO client.test", `^250-`),
			s("STARTTLS", `^220 `),
			s("<starttls>"),
			s("EHLO client.test", `^250-`),
			s("AUTH XOAUTH2", `^504 5\.7\.4`),
		}},
		{"AUTH cancelled", sub, []step{
			s("EHLO client.test", `^250-`),
			s("STARTTLS", `^220 `),
			s("<starttls>"),
			s("EHLO client.test", `^250-`),
			s("AUTH LOGIN", `^334 `),
			s("*", `^501 `),
		}},
		{"sender not owned", sub, append(tlsAuth("alice@example.com", "alicepw"),
			s("MAIL FROM:<bob@example.com>", `^550 5\.7\.1`),
			s("MAIL FROM:<>", `^550 5\.7\.1`),
			s("MAIL FROM:<sales@example.com>", `^250 `), // her alias
			s("MAIL FROM:<alice+tag@example.com>", `^250 `),
		)},
		{"From header not owned", sub, append(tlsAuth("alice@example.com", "alicepw"),
			s("MAIL FROM:<alice@example.com>", `^250 `),
			s("RCPT TO:<bob@example.com>", `^250 `),
			s("DATA", `^354 `),
			s(msg("Bob <bob@example.com>", "bob@example.com", "spoof", "x"), `^550 5\.7\.1 From: header`),
			s("MAIL FROM:<alice@example.com>", `^250 `),
			s("RCPT TO:<bob@example.com>", `^250 `),
			s("DATA", `^354 `),
			s(msg("Alice <alice@example.com>, Bob <bob@example.com>", "bob@example.com", "two", "x"), `^550 5\.7\.1`),
			s("MAIL FROM:<alice@example.com>", `^250 `),
			s("RCPT TO:<bob@example.com>", `^250 `),
			s("DATA", `^354 `),
			s("Subject: no from\r\n\r\nx\r\n.\r\n", `^550 5\.6\.0`),
			s("MAIL FROM:<alice@example.com>", `^250 `),
			s("RCPT TO:<bob@example.com>", `^250 `),
			s("DATA", `^354 `),
			s(msg(`"Sales" <SALES@example.com>`, "bob@example.com", "ok", "x"), `^250 2\.0\.0`),
		)},
		{"remote recipients go to the relay", sub, append(tlsAuth("alice@example.com", "alicepw"),
			s("MAIL FROM:<alice@example.com>", `^250 `),
			s("RCPT TO:<friend@remote.test>", `^250 `),
			s("RCPT TO:<bob@example.com>", `^250 `),
			s("DATA", `^354 `),
			s(msg("alice@example.com", "friend@remote.test", "mixed", "x"), `^250 2\.0\.0`),
		)},
		{"no relay configured", func(o *Options) { sub(o); o.Relay = nil }, append(tlsAuth("alice@example.com", "alicepw"),
			s("MAIL FROM:<alice@example.com>", `^250 `),
			s("RCPT TO:<friend@remote.test>", `^550 5\.7\.1 Relaying not available`),
		)},
		{"insecure auth on loopback", func(o *Options) { o.Role = RoleSubmission; o.AllowInsecureAuth = true }, []step{
			s("EHLO client.test", `AUTH PLAIN LOGIN CRAM-MD5`),
			s("AUTH PLAIN "+plainIR("alice@example.com", "alicepw"), `^235 `),
		}},
		{"plaintext listener without insecure auth", func(o *Options) { o.Role = RoleSubmission }, []step{
			s("EHLO client.test", `^250-`),
			s("AUTH PLAIN "+plainIR("alice@example.com", "alicepw"), `^538 5\.7\.11`),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := startServer(t, tt.edit)
			transcript(t, env.addr, false, tt.steps...)
		})
	}
}

func TestSubmissionMixedDelivery(t *testing.T) {
	env := startServer(t, submission(t))
	transcript(t, env.addr, false, append(tlsAuth("alice@example.com", "alicepw"),
		s("MAIL FROM:<alice@example.com>", `^250 `),
		s("RCPT TO:<friend@remote.test>", `^250 `),
		s("RCPT TO:<bob@example.com>", `^250 `),
		s("RCPT TO:<other@remote.test>", `^250 `),
		s("DATA", `^354 `),
		s(msg("alice@example.com", "friend@remote.test", "mixed", "x"), `^250 2\.0\.0`),
	)...)
	got := env.relay.all()
	if len(got) != 1 || strings.Join(got[0].to, ",") != "friend@remote.test,other@remote.test" || got[0].from != "alice@example.com" {
		t.Fatalf("relay got %+v", got)
	}
	if !strings.HasPrefix(got[0].msg, "Received: from client.test") || strings.Contains(got[0].msg, "Return-Path") {
		t.Errorf("relayed message should start with Received and carry no Return-Path:\n%s", got[0].msg)
	}
	for _, want := range []string{"with ESMTPSA id", "(Authenticated sender: alice@example.com)", "(using TLSv1.3 with cipher"} {
		if !strings.Contains(got[0].msg, want) {
			t.Errorf("Received header lacks %q:\n%s", want, got[0].msg)
		}
	}
	if n := len(env.inbox(t, "bob@example.com")); n != 1 {
		t.Errorf("bob has %d messages, want 1", n)
	}
}

func TestRelayFailureIsTemporary(t *testing.T) {
	env := startServer(t, submission(t))
	env.relay.fail = errors.New("queue disk on fire")
	c := transcript(t, env.addr, false, append(tlsAuth("alice@example.com", "alicepw"),
		s("MAIL FROM:<alice@example.com>", `^250 `),
		s("RCPT TO:<friend@remote.test>", `^250 `),
		s("DATA", `^354 `),
		s(msg("alice@example.com", "friend@remote.test", "x", "y"), `^451 4\.3\.0 Temporary failure, please try again later \(id \w+\)$`),
	)...)
	if strings.Contains(c.last, "fire") {
		t.Errorf("internal error leaked to the client: %q", c.last)
	}
}

func TestImplicitTLS(t *testing.T) {
	env := startServer(t, func(o *Options) {
		o.Role = RoleSubmission
		o.TLSMode = TLSImplicit
		o.TLSConfig = serverTLS(t)
	})
	got := ehlo(t, env.addr, true)
	if !hasCap(got, "AUTH PLAIN LOGIN CRAM-MD5") || hasCap(got, "STARTTLS") {
		t.Errorf("implicit TLS EHLO: want AUTH and no STARTTLS:\n%s", got)
	}
	transcript(t, env.addr, true,
		s("EHLO client.test", `^250-`),
		s("AUTH PLAIN "+plainIR("bob@example.com", "bobpw"), `^235 `),
		s("MAIL FROM:<bob@example.com>", `^250 `),
		s("RCPT TO:<alice@example.com>", `^250 `),
		s("DATA", `^354 `),
		s(msg("bob@example.com", "alice@example.com", "tls", "x"), `^250 2\.0\.0`),
	)
	if m := env.inbox(t, "alice@example.com"); len(m) != 1 || !strings.Contains(m[0], "with ESMTPSA") {
		t.Errorf("stored: %q", m)
	}
}

func TestAuthThrottle(t *testing.T) {
	lim := authlimit.New(authlimit.Options{FreeFailures: 1, Delay: 50 * time.Millisecond, MaxDelay: 50 * time.Millisecond, LockoutFailures: 3, Window: time.Minute})
	env := startServer(t, func(o *Options) { submission(t)(o); o.AuthLimiter = lim })
	bad := plainIR("alice@example.com", "wrong")
	steps := []step{
		s("EHLO client.test", `^250-`),
		s("STARTTLS", `^220 `),
		s("<starttls>"),
		s("EHLO client.test", `^250-`),
		s("AUTH PLAIN "+bad, `^535 5\.7\.8`),
	}
	c := transcript(t, env.addr, false, steps...)
	// Attempts after more than FreeFailures failures are delayed; at
	// LockoutFailures the IP is refused, even with the right password,
	// with a temporary refusal.
	start := time.Now()
	c.run([]step{s("AUTH PLAIN "+bad, `^535 5\.7\.8`)})
	if d := time.Since(start); d > 40*time.Millisecond {
		t.Errorf("second attempt (one failure before it) delayed %v, want none", d)
	}
	start = time.Now()
	c.run([]step{s("AUTH PLAIN "+bad, `^535 5\.7\.8`)})
	if d := time.Since(start); d < 40*time.Millisecond {
		t.Errorf("third attempt answered after %v, want the throttle's delay", d)
	}
	c.run([]step{s("AUTH PLAIN "+plainIR("alice@example.com", "alicepw"), `^454 4\.7\.0`)})
	// A fresh connection from the same IP is refused too.
	transcript(t, env.addr, false, append(steps[:4], s("AUTH PLAIN "+plainIR("alice@example.com", "alicepw"), `^454 4\.7\.0`))...)
}

func TestRemovedUserSessionCloses(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*accounts.Config)
	}{
		{"removed", func(c *accounts.Config) { c.Users = c.Users[:1]; c.Aliases = nil }},
		{"disabled", func(c *accounts.Config) { c.Users[1].Disabled = true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := startServer(t, submission(t))
			bob := transcript(t, env.addr, false, tlsAuth("bob@example.com", "bobpw")...)
			alice := transcript(t, env.addr, false, tlsAuth("alice@example.com", "alicepw")...)
			cfg := testConfig()
			tc.edit(&cfg)
			if err := env.dir.Update(cfg); err != nil {
				t.Fatalf("Update: %v", err)
			}
			bob.conn.SetDeadline(time.Now().Add(5 * time.Second))
			bob.conn.Write([]byte("NOOP\r\n"))
			if got, err := bob.reply(); err == nil && strings.HasPrefix(got, "250") {
				t.Fatalf("session of bob still answers: %q", got)
			}
			alice.run([]step{s("NOOP", `^250 `)}) // others stay
		})
	}
}
