package sasl

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"regexp"
	"strings"
	"testing"

	gosasl "github.com/emersion/go-sasl"

	"github.com/mailsuite/mailsuite/accounts"
)

// newDir is a real directory: bob has a {PLAIN} password so that every
// mechanism, CRAM-MD5 included, can log him in cheaply.
func newDir(t testing.TB) *accounts.Directory {
	t.Helper()
	d, err := accounts.New(accounts.Config{
		Domains: []string{"example.com"},
		Users: []accounts.User{
			{Address: "bob@example.com", Password: "{PLAIN}bobpw"},
			{Address: "amy@example.com", Password: "{PLAIN}x", CRAMMD5: accounts.CRAMMD5Secret("amy secret")},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// step is one client turn: the response to send (nil = none) and what the
// server must answer.
type step struct {
	resp      []byte
	challenge string // regexp the challenge must match fully; "" for none
	done      bool
	err       error // errors.Is target; nil for success
}

// run drives a server through steps and returns the user reported to
// onSuccess.
func run(t *testing.T, mech string, v Verifier, steps []step) string {
	t.Helper()
	var got string
	calls := 0
	s, err := NewServer(context.Background(), mech, v, "mail.example.com", func(u string) { got = u; calls++ })
	if err != nil {
		t.Fatal(err)
	}
	for i, st := range steps {
		ch, done, err := s.Next(st.resp)
		if st.err != nil {
			if !errors.Is(err, st.err) || !done {
				t.Fatalf("step %d: Next = %q, %v, %v; want done with %v", i, ch, done, err, st.err)
			}
			continue
		}
		if err != nil || done != st.done {
			t.Fatalf("step %d: Next = %q, %v, %v; want done=%v", i, ch, done, err, st.done)
		}
		if !regexp.MustCompile("^" + st.challenge + "$").Match(ch) {
			t.Fatalf("step %d: challenge %q does not match %q", i, ch, st.challenge)
		}
	}
	if calls > 1 {
		t.Fatalf("onSuccess called %d times", calls)
	}
	return got
}

// exchange is a named dialogue and the user it should log in ("" none).
type exchange struct {
	name  string
	steps []step
	user  string
}

func runExchanges(t *testing.T, mech string, v Verifier, cases []exchange) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := run(t, mech, v, c.steps); got != c.user {
				t.Fatalf("onSuccess user %q, want %q", got, c.user)
			}
		})
	}
}

func b(s string) []byte { return []byte(s) }

func TestPlain(t *testing.T) {
	d := newDir(t)
	cases := []exchange{
		{"initial response", []step{{resp: b("\x00bob@example.com\x00bobpw"), done: true}}, "bob@example.com"},
		{"no initial response", []step{{resp: nil}, {resp: b("\x00Bob@Example.com\x00bobpw"), done: true}}, "bob@example.com"},
		{"authzid same user", []step{{resp: b("BOB@example.com\x00bob@example.com\x00bobpw"), done: true}}, "bob@example.com"},
		{"authzid other user", []step{{resp: b("amy@example.com\x00bob@example.com\x00bobpw"), err: ErrAuthzid}}, ""},
		{"authzid other is auth failure", []step{{resp: b("amy@example.com\x00bob@example.com\x00bobpw"), err: accounts.ErrAuthFailed}}, ""},
		{"wrong password", []step{{resp: b("\x00bob@example.com\x00nope"), err: accounts.ErrAuthFailed}}, ""},
		{"unknown user", []step{{resp: b("\x00zed@example.com\x00bobpw"), err: accounts.ErrAuthFailed}}, ""},
		{"empty response", []step{{resp: nil}, {resp: b(""), err: ErrMalformed}}, ""},
		{"one NUL", []step{{resp: b("bob@example.com\x00bobpw"), err: ErrMalformed}}, ""},
		{"three NULs", []step{{resp: b("\x00bob@example.com\x00bobpw\x00"), err: ErrMalformed}}, ""},
		{"after done", []step{{resp: b("\x00bob@example.com\x00bobpw"), done: true}, {resp: b("x"), err: ErrMalformed}}, "bob@example.com"},
		{"after failure", []step{{resp: b("junk"), err: ErrMalformed}, {resp: b("\x00bob@example.com\x00bobpw"), err: ErrMalformed}}, ""},
	}
	runExchanges(t, "plain", d, cases)
}

func TestLogin(t *testing.T) {
	d := newDir(t)
	cases := []exchange{
		{"no initial response", []step{
			{resp: nil, challenge: "Username:"},
			{resp: b("bob@example.com"), challenge: "Password:"},
			{resp: b("bobpw"), done: true},
		}, "bob@example.com"},
		{"username as initial response", []step{
			{resp: b("BOB@example.com"), challenge: "Password:"},
			{resp: b("bobpw"), done: true},
		}, "bob@example.com"},
		{"empty initial response", []step{
			{resp: b(""), challenge: "Username:"},
			{resp: b("bob@example.com"), challenge: "Password:"},
			{resp: b("bobpw"), done: true},
		}, "bob@example.com"},
		{"wrong password", []step{
			{resp: b("bob@example.com"), challenge: "Password:"},
			{resp: b("bobpw "), err: accounts.ErrAuthFailed},
		}, ""},
		{"garbage username", []step{
			{resp: nil, challenge: "Username:"},
			{resp: b("\x00\xff\r\n"), challenge: "Password:"},
			{resp: b("bobpw"), err: accounts.ErrAuthFailed},
		}, ""},
		{"nil answers", []step{
			{resp: nil, challenge: "Username:"},
			{resp: nil, challenge: "Password:"},
			{resp: nil, err: accounts.ErrAuthFailed},
		}, ""},
		{"after done", []step{
			{resp: b("bob@example.com"), challenge: "Password:"},
			{resp: b("bobpw"), done: true},
			{resp: b("again"), err: ErrMalformed},
		}, "bob@example.com"},
	}
	runExchanges(t, "LOGIN", d, cases)
}

// go-sasl's own clients must be able to talk to our servers.
func TestAgainstGoSASLClients(t *testing.T) {
	d := newDir(t)
	for _, c := range []gosasl.Client{
		gosasl.NewPlainClient("", "bob@example.com", "bobpw"),
		gosasl.NewLoginClient("bob@example.com", "bobpw"),
	} {
		mech, ir, err := c.Start()
		if err != nil {
			t.Fatal(err)
		}
		var user string
		s, err := NewServer(context.Background(), mech, d, "h", func(u string) { user = u })
		if err != nil {
			t.Fatal(err)
		}
		resp := ir
		for i := 0; ; i++ {
			if i > 5 {
				t.Fatalf("%s: exchange does not end", mech)
			}
			ch, done, err := s.Next(resp)
			if err != nil {
				t.Fatalf("%s: %v", mech, err)
			}
			if done {
				break
			}
			if resp, err = c.Next(ch); err != nil {
				t.Fatalf("%s client: %v", mech, err)
			}
		}
		if user != "bob@example.com" {
			t.Fatalf("%s: user %q", mech, user)
		}
	}
}

func cramDigest(password, challenge string) string {
	m := hmac.New(md5.New, []byte(password))
	m.Write([]byte(challenge))
	return hex.EncodeToString(m.Sum(nil))
}

func TestCRAMMD5(t *testing.T) {
	d := newDir(t)
	for _, c := range []struct {
		user, password, want string
		err                  error
	}{
		{"bob@example.com", "bobpw", "bob@example.com", nil},
		{"Amy@example.com", "amy secret", "amy@example.com", nil},
		{"amy@example.com", "x", "", accounts.ErrAuthFailed},
		{"zed@example.com", "bobpw", "", accounts.ErrAuthFailed},
		{"user with spaces", "bobpw", "", accounts.ErrAuthFailed},
	} {
		var got string
		s, _ := NewServer(context.Background(), CRAMMD5, d, "mail.example.com", func(u string) { got = u })
		ch, done, err := s.Next(nil)
		if err != nil || done {
			t.Fatal(done, err)
		}
		if !regexp.MustCompile(`^<[0-9]+\.[0-9]+@mail\.example\.com>$`).Match(ch) {
			t.Fatalf("challenge %q is not <random.time@host>", ch)
		}
		_, done, err = s.Next([]byte(c.user + " " + cramDigest(c.password, string(ch))))
		if !done || !errors.Is(err, c.err) || (c.err == nil && err != nil) || got != c.want {
			t.Errorf("%s: done=%v err=%v user=%q; want %q, %v", c.user, done, err, got, c.want, c.err)
		}
	}
}

func TestCRAMMD5ChallengesDiffer(t *testing.T) {
	seen := map[string]bool{}
	for range 20 {
		s, _ := NewServer(context.Background(), CRAMMD5, newDir(t), "", nil)
		ch, _, _ := s.Next(nil)
		if seen[string(ch)] {
			t.Fatalf("challenge %q repeated", ch)
		}
		if !strings.HasSuffix(string(ch), "@localhost>") {
			t.Fatalf("challenge %q without a hostname fallback", ch)
		}
		seen[string(ch)] = true
	}
}

func TestCRAMMD5Malformed(t *testing.T) {
	d := newDir(t)
	digest := strings.Repeat("0", 32)
	for _, resp := range []string{
		"", "bob@example.com", " " + digest, "bob@example.com " + digest[:31],
		"bob@example.com " + digest + "0", "bob@example.com " + strings.ToUpper(cramDigest("a", "b")),
		"bob@example.com\t" + digest, "bob@example.com " + strings.Repeat("g", 32),
	} {
		s, _ := NewServer(context.Background(), CRAMMD5, d, "h", nil)
		if _, _, err := s.Next(nil); err != nil {
			t.Fatal(err)
		}
		if _, done, err := s.Next([]byte(resp)); !done || !errors.Is(err, ErrMalformed) {
			t.Errorf("response %q: done=%v err=%v, want ErrMalformed", resp, done, err)
		}
		if _, _, err := s.Next([]byte(resp)); !errors.Is(err, ErrMalformed) {
			t.Errorf("response after the end: %v", err)
		}
	}
	// No initial response allowed; an empty one is no response.
	s, _ := NewServer(context.Background(), CRAMMD5, d, "h", nil)
	if _, done, err := s.Next([]byte("bob@example.com " + digest)); !done || !errors.Is(err, ErrMalformed) {
		t.Errorf("initial response: done=%v err=%v", done, err)
	}
	s, _ = NewServer(context.Background(), CRAMMD5, d, "h", nil)
	if ch, done, err := s.Next([]byte{}); err != nil || done || len(ch) == 0 {
		t.Errorf("empty initial response: %q %v %v", ch, done, err)
	}
}

// errVerifier fails with its own error so we can see it pass through.
type errVerifier struct{ err error }

func (v errVerifier) Authenticate(context.Context, string, string) (string, error) { return "", v.err }
func (v errVerifier) VerifyCRAMMD5(string, string, string) (string, error)         { return "", v.err }

func TestVerifierErrorsPassThrough(t *testing.T) {
	myErr := errors.New("directory on fire")
	v := errVerifier{myErr}
	for mech, resps := range map[string][][]byte{
		Plain:   {b("\x00u\x00p")},
		Login:   {b("u"), b("p")},
		CRAMMD5: {nil, b("u " + strings.Repeat("a", 32))},
	} {
		s, err := NewServer(context.Background(), mech, v, "h", func(string) { t.Errorf("%s: onSuccess called", mech) })
		if err != nil {
			t.Fatal(err)
		}
		var last error
		for _, r := range resps {
			_, _, last = s.Next(r)
		}
		if !errors.Is(last, myErr) {
			t.Errorf("%s: error %v does not wrap the verifier's", mech, last)
		}
	}
}

func TestUnknownMechanism(t *testing.T) {
	for _, m := range []string{"", "DIGEST-MD5", "XOAUTH2", "PLAIN ", "SCRAM-SHA-256"} {
		if s, err := NewServer(context.Background(), m, newDir(t), "h", nil); !errors.Is(err, ErrUnknownMechanism) || s != nil {
			t.Errorf("NewServer(%q) = %v, %v", m, s, err)
		}
	}
	for _, m := range Mechanisms() {
		if _, err := NewServer(context.Background(), strings.ToLower(m), newDir(t), "h", nil); err != nil {
			t.Errorf("NewServer(%q): %v", m, err)
		}
	}
}
