package accounts

import (
	"strings"
	"testing"
)

func TestCanonicalAddress(t *testing.T) {
	cases := []struct {
		in, want string // want "" means rejected
	}{
		{"bob@example.com", "bob@example.com"},
		{"Bob@Example.COM", "bob@example.com"},
		{"bob.smith+news@example.com", "bob.smith+news@example.com"},
		{"o'neil@example.com", "o'neil@example.com"},
		{"Jörg@Bücher.example", "jörg@bücher.example"},
		{"a@b", "a@b"},
		{"", ""},
		{"bob", ""},
		{"@example.com", ""},
		{"bob@", ""},
		{"bob@@example.com", ""},
		{`"bob"@example.com`, ""},
		{`"bob@x"@example.com`, ""},
		{"bob smith@example.com", ""},
		{".bob@example.com", ""},
		{"bob.@example.com", ""},
		{"bo..b@example.com", ""},
		{"bob@example..com", ""},
		{"bob@.example.com", ""},
		{"bob@example.com.", ""},
		{"bob@-example.com", ""},
		{"bob@exa_mple.com", ""},
		{"bob@[192.0.2.1]", ""},
		{"(comment)bob@example.com", ""},
		{"bob@example.com\r\n", ""},
		{"bob\x00@example.com", ""},
		{"b\xffob@example.com", ""},
		{"<bob@example.com>", ""},
		{strings.Repeat("a", 64) + "@example.com", strings.Repeat("a", 64) + "@example.com"},
		{strings.Repeat("a", 65) + "@example.com", ""},
		{"bob@" + strings.Repeat("a", 64) + ".com", ""},
	}
	for _, c := range cases {
		got, ok := canonicalAddress(c.in)
		if c.want == "" {
			if ok {
				t.Errorf("canonicalAddress(%q) = %q, want rejection", c.in, got)
			}
			continue
		}
		if !ok || got != c.want {
			t.Errorf("canonicalAddress(%q) = %q, %v; want %q", c.in, got, ok, c.want)
		}
	}
}

func TestStripTag(t *testing.T) {
	cases := map[string]string{
		"bob+news@x":   "bob@x",
		"bob+a+b@x":    "bob@x",
		"bob+@x":       "bob@x",
		"+news@x":      "",
		"bob@x":        "",
		"bob@plus+dom": "",
	}
	for in, want := range cases {
		got, ok := stripTag(in)
		if (want == "") == ok || got != want {
			t.Errorf("stripTag(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

func FuzzCanonicalAddress(f *testing.F) {
	for _, s := range []string{"bob@example.com", "Bob+x@EXAMPLE.com", `"q"@x`, "a@b@c", "Jörg@Bücher.example", "@", "x@y."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := canonicalAddress(s)
		if !ok {
			return
		}
		// Canonical form is a fixed point and has exactly one '@'.
		again, ok2 := canonicalAddress(got)
		if !ok2 || again != got {
			t.Fatalf("canonicalAddress(%q) = %q, which canonicalises to %q, %v", s, got, again, ok2)
		}
		if strings.Count(got, "@") != 1 {
			t.Fatalf("canonicalAddress(%q) = %q", s, got)
		}
		if base, tagged := stripTag(got); tagged {
			if _, ok := canonicalAddress(base); !ok {
				t.Fatalf("stripTag(%q) = %q, not an address", got, base)
			}
		}
	})
}

func TestCanonicalAddressExported(t *testing.T) {
	if got, ok := CanonicalAddress("Bob+X@Example.COM"); !ok || got != "bob+x@example.com" {
		t.Fatalf("CanonicalAddress = %q, %v", got, ok)
	}
	if _, ok := CanonicalAddress(`"bob"@example.com`); ok {
		t.Fatal("quoted local part accepted")
	}
}
