package smtpd

import (
	"testing"
)

// TestOpenRelayMatrix tries the classic relay tricks on the MX role from an
// untrusted client: each is refused, none reaches the relay or a mailbox.
func TestOpenRelayMatrix(t *testing.T) {
	env := startServer(t, nil)
	cases := []struct{ rcpt, want string }{
		{"<victim@other.test>", `^550 5\.7\.1`},
		{"<VICTIM@OTHER.TEST>", `^550 5\.7\.1`},
		{"<victim@Other.Test>", `^550 5\.7\.1`},
		{"<user%other.test@example.com>", `^550 5\.1\.1`},               // percent hack
		{"<user%other.test@EXAMPLE.com>", `^550 5\.1\.1`},               // with mixed case
		{"<other.test!user@example.com>", `^550 5\.1\.1`},               // bang path
		{`<"user@other.test"@example.com>`, `^553 5\.1\.3`},             // quoted local part with @
		{`<"user%other.test"@example.com>`, `^550 5\.1\.1`},             // quoted percent hack
		{"<@example.com:user@other.test>", `^550 5\.7\.1`},              // source route
		{"<@example.com,@example.org:user@other.test>", `^550 5\.7\.1`}, // longer source route
		{"<user@other.test.>", `^553 5\.1\.3`},                          // trailing dot
		{"<user@example.com.>", `^553 5\.1\.3`},                         // trailing dot, our domain
		{"<user@[127.0.0.1]>", `^550 5\.7\.1`},                          // IP literal
		{"<user@[IPv6:::1]>", `^550 5\.7\.1`},                           // address literal
		{"<alice@[127.0.0.1]>", `^550 5\.7\.1`},                         // a real user at a literal
		{"<user@other.test@example.com>", `^553 5\.1\.3`},               // two @
		{"<user@example.com@other.test>", `^553 5\.1\.3`},
		{"<user@sub.example.com>", `^550 5\.7\.1`}, // subdomain of ours
		{"<user@example.com.other.test>", `^550 5\.7\.1`},
		{"<postmaster@other.test>", `^550 5\.7\.1`},
	}
	steps := []step{
		s("EHLO client.test", `^250-`),
		s("MAIL FROM:<someone@remote.test>", `^250 `),
	}
	for _, c := range cases {
		steps = append(steps, s("RCPT TO:"+c.rcpt, c.want))
	}
	steps = append(steps, s("DATA", `^502 5\.5\.1`)) // nobody accepted
	transcript(t, env.addr, false, steps...)
	if got := env.relay.all(); len(got) != 0 {
		t.Fatalf("relay got %+v", got)
	}
}
