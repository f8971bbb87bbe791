package iniedit

import (
	"strings"
	"testing"
)

const sample = `; top comment
[server]
domains = example.com ; inline

; the demo user
[user demo@example.com]
password = {PLAIN}x

[user bob@example.com]
password = {PLAIN}y
quota = 1G
`

func TestAddSectionKeepsEverythingElse(t *testing.T) {
	f := Parse([]byte(sample))
	f.AddSection("user carol@example.com", [2]string{"password", "{ARGON2ID}h"})
	want := sample + "\n[user carol@example.com]\npassword = {ARGON2ID}h\n"
	if got := string(f.Bytes()); got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestRemoveSectionTakesItsComment(t *testing.T) {
	f := Parse([]byte(sample))
	if err := f.RemoveSection("user DEMO@example.com"); err != nil {
		t.Fatal(err)
	}
	want := "; top comment\n[server]\ndomains = example.com ; inline\n\n[user bob@example.com]\npassword = {PLAIN}y\nquota = 1G\n"
	if got := string(f.Bytes()); got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
	if err := f.RemoveSection("user nobody@example.com"); err == nil {
		t.Fatal("removing a missing section should fail")
	}
}

func TestRemoveLastSection(t *testing.T) {
	f := Parse([]byte(sample))
	if err := f.RemoveSection("user bob@example.com"); err != nil {
		t.Fatal(err)
	}
	want := "; top comment\n[server]\ndomains = example.com ; inline\n\n; the demo user\n[user demo@example.com]\npassword = {PLAIN}x\n"
	if got := string(f.Bytes()); got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestSetReplacesOrAppends(t *testing.T) {
	f := Parse([]byte(sample))
	if err := f.Set("user bob@example.com", "password", "{ARGON2ID}new"); err != nil {
		t.Fatal(err)
	}
	if err := f.Set("user demo@example.com", "cram_md5", "{CRAM-MD5}abc"); err != nil {
		t.Fatal(err)
	}
	want := "; top comment\n[server]\ndomains = example.com ; inline\n\n; the demo user\n[user demo@example.com]\npassword = {PLAIN}x\ncram_md5 = {CRAM-MD5}abc\n\n[user bob@example.com]\npassword = {ARGON2ID}new\nquota = 1G\n"
	if got := string(f.Bytes()); got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
	if err := f.Set("nope", "k", "v"); err == nil {
		t.Fatal("Set on a missing section should fail")
	}
}

func TestRemoveKey(t *testing.T) {
	f := Parse([]byte(sample))
	if err := f.RemoveKey("user bob@example.com", "quota"); err != nil {
		t.Fatal(err)
	}
	if err := f.RemoveKey("user bob@example.com", "absent"); err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(sample, "quota = 1G\n", "", 1)
	if got := string(f.Bytes()); got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
}

func FuzzEdit(f *testing.F) {
	f.Add([]byte(sample), "user bob@example.com", "k", "v")
	f.Add([]byte("[a]\n[b]\n"), "a", "x", "y")
	f.Fuzz(func(t *testing.T, data []byte, section, key, value string) {
		e := Parse(data)
		had := e.Has(section)
		if err := e.Set(section, key, value); (err == nil) != had {
			t.Fatalf("Set error %v with section present=%v", err, had)
		}
		if err := e.RemoveSection(section); (err == nil) != had {
			t.Fatalf("RemoveSection error %v with section present=%v", err, had)
		}
		_ = Parse(e.Bytes()).Sections()
	})
}
