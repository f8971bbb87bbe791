package accounts

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func FuzzParsePassword(f *testing.F) {
	for _, s := range []string{
		"plain", "{PLAIN}x", "{plain}", "{", "{}", "{}x", "{X}",
		"{ARGON2ID}$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
		"{ARGON2I}$argon2i$v=19$m=64,t=1,p=2$ZGlmZnNhbHQ$sDV8zPvvkfOGCw26RHsjSMvv7K2vmQq/6cxAcmxSEnE",
		"{ARGON2ID}$argon2id$v=19$m=64,t=1,p=1,p=2$c29tZXNhbHQ$AAAA",
		"{BLF-CRYPT}$2y$04$abcdefghijklmnopqrstuvabcdefghijklmnopqrstuvwxyzABCDE",
		"{BLF-CRYPT}$2a$04$......................$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$",
	} {
		f.Add(s, "pw")
	}
	f.Fuzz(func(t *testing.T, stored, password string) {
		h, err := parsePassword(stored)
		if err != nil {
			return
		}
		// Only verify what is cheap: the fuzzer may write any cost, and
		// parsePassword's limits still allow expensive ones.
		cheapEnough := h.m <= 256 && h.t <= 2 && (h.scheme != SchemeBcrypt || h.cost == "cost=4")
		if !cheapEnough {
			return
		}
		h.verify(password, nil)
		if h.dummy().verify(password, nil) && h.scheme != SchemePlain {
			t.Fatalf("dummy of %q matches %q", stored, password)
		}
	})
}

func FuzzParseCRAMSecret(f *testing.F) {
	f.Add(CRAMMD5Secret("password"))
	f.Add("{HMAC-MD5}9186D855E11EBA527A7A52CA82B313E180D62234F0ACC9051B527243D41E2740")
	f.Add("{CRAM-MD5}")
	f.Fuzz(func(t *testing.T, s string) {
		st, err := parseCRAMSecret(s)
		if err != nil {
			return
		}
		// Parsing then writing back gives the same 64 digits, lower-cased.
		again := cramPrefix + strings.ToLower(s[len(s)-64:])
		st2, err := parseCRAMSecret(again)
		if err != nil || st2 != st {
			t.Fatalf("%q and %q parse differently", s, again)
		}
	})
}

// Resolve and CanSendAs take addresses straight from SMTP commands: any
// input gives an answer, never a panic, and answers are canonical users.
func FuzzResolve(f *testing.F) {
	d := newTestDir(f)
	users := map[string]bool{}
	for _, u := range d.Users() {
		users[u.Address] = true
	}
	for _, s := range []string{"bob@example.com", "Sales+x@EXAMPLE.com", "x@example.org", `"a b"@example.com`, "a@b@example.com", "@example.com", "+@example.com"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		got, err := d.Resolve(addr)
		if err != nil {
			if !errors.Is(err, ErrNoSuchUser) && !errors.Is(err, ErrNotLocal) {
				t.Fatalf("Resolve(%q): unexpected error %v", addr, err)
			}
			return
		}
		if len(got) == 0 || !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) {
			t.Fatalf("Resolve(%q) = %v", addr, got)
		}
		for _, u := range got {
			if !users[u] {
				t.Fatalf("Resolve(%q) = %v: %s is not a user", addr, got, u)
			}
		}
		d.CanSendAs("bob@example.com", addr)
	})
}

func BenchmarkResolve(b *testing.B) {
	d := newTestDir(b)
	for b.Loop() {
		if _, err := d.Resolve("Sales+q3@Example.com"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAuthenticateCheapHash(b *testing.B) {
	d := newTestDir(b)
	ctx := b.Context()
	for b.Loop() {
		if _, err := d.Authenticate(ctx, "bob@example.com", "bobpw"); err != nil {
			b.Fatal(err)
		}
	}
}
