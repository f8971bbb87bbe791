package accounts

import (
	"regexp"
	"strings"
	"testing"
)

// cheap are argon2 parameters that make tests fast; verification reads
// the parameters back from the hash, so they exercise the same code.
var cheap = HashOptions{Memory: 64, Time: 1, Threads: 1}

func cheapHash(t testing.TB, password string) string {
	t.Helper()
	h, err := HashPasswordWith(password, cheap)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestHashPasswordDefaultFormat(t *testing.T) {
	h, err := HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	// 16-byte salt and 32-byte key, unpadded standard base64 (22 and 43 chars).
	re := regexp.MustCompile(`^\{ARGON2ID\}\$argon2id\$v=19\$m=65536,t=3,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)
	if !re.MatchString(h) {
		t.Fatalf("hash %q does not have Dovecot's {ARGON2ID} form", h)
	}
	ph, err := parsePassword(h)
	if err != nil {
		t.Fatal(err)
	}
	if !ph.verify("correct horse", nil) || ph.verify("correct horse ", nil) {
		t.Fatal("default-cost hash does not verify exactly its password")
	}
	h2, _ := HashPassword("correct horse")
	if h2 == h {
		t.Fatal("two hashes of one password are equal: salt not random")
	}
}

// Hashes written by other implementations must verify: the Argon2
// reference implementation's vectors (password "password"), and bcrypt
// with each of the version letters Dovecot and PHP write.
func TestVerifyForeignHashes(t *testing.T) {
	bc, err := HashPasswordWith("password", HashOptions{Scheme: SchemeBcrypt, BcryptCost: 4})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(bc, "{BLF-CRYPT}$2a$04$") {
		t.Fatalf("bcrypt hash %q", bc)
	}
	cases := []string{
		"{ARGON2ID}$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
		"{ARGON2I}$argon2i$v=19$m=65536,t=2,p=1$ZGlmZnNhbHQ$sDV8zPvvkfOGCw26RHsjSMvv7K2vmQq/6cxAcmxSEnE",
		"{argon2id}$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
		bc,
		strings.Replace(bc, "$2a$", "$2y$", 1),
		strings.Replace(bc, "$2a$", "$2b$", 1),
		"{PLAIN}password",
		"password",
	}
	for _, stored := range cases {
		h, err := parsePassword(stored)
		if err != nil {
			t.Errorf("parse %q: %v", stored, err)
			continue
		}
		if !h.verify("password", nil) {
			t.Errorf("%q does not verify \"password\"", stored)
		}
		if h.verify("Password", nil) || h.verify("", nil) {
			t.Errorf("%q verifies a wrong password", stored)
		}
	}
}

func TestHashPasswordWith(t *testing.T) {
	for _, opts := range []HashOptions{cheap, {Scheme: SchemeBcrypt, BcryptCost: 4}} {
		h, err := HashPasswordWith("s3cret", opts)
		if err != nil {
			t.Fatal(err)
		}
		ph, err := parsePassword(h)
		if err != nil {
			t.Fatalf("parse own hash %q: %v", h, err)
		}
		if !ph.verify("s3cret", nil) || ph.verify("s3cre", nil) {
			t.Fatalf("%q: wrong verification result", h)
		}
	}
	if _, err := HashPasswordWith("x", HashOptions{Scheme: "MD5"}); err == nil {
		t.Fatal("unsupported scheme accepted")
	}
	if _, err := HashPasswordWith("x", HashOptions{Memory: maxArgonMemory + 1}); err == nil {
		t.Fatal("huge memory accepted")
	}
}

func TestParsePasswordRejects(t *testing.T) {
	good := cheapHash(t, "pw")
	bad := []string{
		"{SHA512-CRYPT}$6$abc$def",
		"{ARGON2ID}",
		"{ARGON2ID}$argon2i$v=19$m=64,t=1,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
		"{ARGON2ID}$argon2id$v=16$m=64,t=1,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
		"{ARGON2ID}$argon2id$v=19$m=64,t=0,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
		"{ARGON2ID}$argon2id$v=19$m=99999999,t=1,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
		"{ARGON2ID}$argon2id$v=19$m=64,t=1,p=0$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
		"{ARGON2ID}$argon2id$v=19$m=64,t=1,p=1,x=2$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
		"{ARGON2ID}$argon2id$v=19$m=64,t=1,p=1$!!$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
		"{ARGON2ID}$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHQ$",
		"{ARGON2ID}$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc=",
		good + "$extra",
		"{BLF-CRYPT}$1$abc",
		"{BLF-CRYPT}$2x$04$abcdefghijklmnopqrstuvabcdefghijklmnopqrstuvwxyzABCDE",
		"{BLF-CRYPT}$2a$99$abcdefghijklmnopqrstuvabcdefghijklmnopqrstuvwxyzABCDE",
		"{BLF-CRYPT}",
	}
	for _, s := range bad {
		if _, err := parsePassword(s); err == nil {
			t.Errorf("parsePassword(%q) accepted a malformed hash", s)
		}
	}
}

func TestPlaintextPassword(t *testing.T) {
	cases := map[string]bool{
		"":                  false,
		"hunter2":           true,
		"{PLAIN}hunter2":    true,
		"{plain}hunter2":    true,
		cheapHash(t, "pw"):  false,
		"{BLF-CRYPT}$2y$..": false,
	}
	for pw, want := range cases {
		if got := (User{Password: pw}).PlaintextPassword(); got != want {
			t.Errorf("PlaintextPassword(%q) = %v, want %v", pw, got, want)
		}
	}
}

// The dummy for each scheme must parse-alike and do the same work, and no
// password may match it.
func TestDummyHashes(t *testing.T) {
	bc, _ := HashPasswordWith("pw", HashOptions{Scheme: SchemeBcrypt, BcryptCost: 4})
	for _, stored := range []string{cheapHash(t, "pw"), bc, "{PLAIN}pw"} {
		h, err := parsePassword(stored)
		if err != nil {
			t.Fatal(err)
		}
		d := h.dummy()
		if d.scheme != h.scheme || d.cost != h.cost {
			t.Fatalf("dummy of %q is %s %s", stored, d.scheme, d.cost)
		}
		if d.verify("pw", nil) {
			t.Fatalf("dummy of %q matches the real password", stored)
		}
		if d.scheme == SchemeBcrypt {
			// A dummy bcrypt bcrypt cannot parse would fail fast, not after the work.
			if _, err := parsePassword("{BLF-CRYPT}" + string(d.bcrypt)); err != nil {
				t.Fatalf("dummy bcrypt %q does not parse: %v", d.bcrypt, err)
			}
		}
	}
}

func BenchmarkVerifyArgon2IDDefault(b *testing.B) {
	stored, err := HashPassword("benchmark")
	if err != nil {
		b.Fatal(err)
	}
	h, _ := parsePassword(stored)
	for b.Loop() {
		h.verify("benchmark", nil)
	}
}
