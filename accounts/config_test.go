package accounts

import (
	"errors"
	"strings"
	"testing"
)

func TestConfigRejects(t *testing.T) {
	pw := "{PLAIN}x"
	u := func(addr string, aliases ...string) User { return User{Address: addr, Password: pw, Aliases: aliases} }
	cases := []struct {
		name string
		cfg  Config
		want string // substring of the error
	}{
		{"no domains", Config{}, "no local domains"},
		{"bad domain", Config{Domains: []string{"exa mple.com"}}, `domain "exa mple.com"`},
		{"duplicate domain", Config{Domains: []string{"x.org", "X.org"}}, "domain x.org listed twice"},
		{"bad user", Config{Domains: []string{"x.org"}, Users: []User{u(`"bob"@x.org`)}}, `user "\"bob\"@x.org" is not a valid address`},
		{"foreign user", Config{Domains: []string{"x.org"}, Users: []User{u("bob@y.org")}}, "user bob@y.org is not in a local domain"},
		{"duplicate user", Config{Domains: []string{"x.org"}, Users: []User{u("bob@x.org"), u("BOB@X.org")}}, "duplicate user bob@x.org"},
		{"bad hash", Config{Domains: []string{"x.org"}, Users: []User{{Address: "bob@x.org", Password: "{SHA1}abc"}}}, "user bob@x.org: password: unsupported password scheme {SHA1}"},
		{"bad cram", Config{Domains: []string{"x.org"}, Users: []User{{Address: "bob@x.org", Password: pw, CRAMMD5: "{CRAM-MD5}12"}}}, "user bob@x.org: CRAM-MD5 secret"},
		{"negative quota", Config{Domains: []string{"x.org"}, Users: []User{{Address: "bob@x.org", Password: pw, Quota: -1}}}, "user bob@x.org: negative quota"},
		{"user alias foreign", Config{Domains: []string{"x.org"}, Users: []User{u("bob@x.org", "bob@y.org")}}, "user bob@x.org: alias bob@y.org is not in a local domain"},
		{"user alias is a user", Config{Domains: []string{"x.org"}, Users: []User{u("bob@x.org"), u("amy@x.org", "Bob@x.org")}}, "address bob@x.org (alias of user amy@x.org) is already in use (user)"},
		{"user alias twice", Config{Domains: []string{"x.org"}, Users: []User{u("bob@x.org", "boss@x.org"), u("amy@x.org", "boss@x.org")}}, "address boss@x.org (alias of user amy@x.org) is already in use (alias of user bob@x.org)"},
		{"alias is a user", Config{Domains: []string{"x.org"}, Users: []User{u("bob@x.org")}, Aliases: map[string][]string{"BOB@x.org": {"bob@x.org"}}}, "address bob@x.org (alias) is already in use (user)"},
		{"alias key case twice", Config{Domains: []string{"x.org"}, Users: []User{u("bob@x.org")}, Aliases: map[string][]string{"sales@x.org": {"bob@x.org"}, "Sales@x.org": {"bob@x.org"}}}, "address sales@x.org (alias) is already in use (alias)"},
		{"alias foreign", Config{Domains: []string{"x.org"}, Users: []User{u("bob@x.org")}, Aliases: map[string][]string{"sales@y.org": {"bob@x.org"}}}, "alias sales@y.org is not in a local domain"},
		{"alias bad key", Config{Domains: []string{"x.org"}, Users: []User{u("bob@x.org")}, Aliases: map[string][]string{"sales": {"bob@x.org"}}}, `alias "sales" is not a valid address`},
		{"catch-all foreign", Config{Domains: []string{"x.org"}, Users: []User{u("bob@x.org")}, Aliases: map[string][]string{"@y.org": {"bob@x.org"}}}, `catch-all "@y.org"`},
		{"alias empty", Config{Domains: []string{"x.org"}, Users: []User{u("bob@x.org")}, Aliases: map[string][]string{"sales@x.org": nil}}, "alias sales@x.org has no targets"},
		{"alias nowhere", Config{Domains: []string{"x.org"}, Users: []User{u("bob@x.org")}, Aliases: map[string][]string{"sales@x.org": {"bob@x.org", "zed@x.org"}}}, "alias sales@x.org points nowhere: zed@x.org"},
		{"alias foreign target", Config{Domains: []string{"x.org"}, Users: []User{u("bob@x.org")}, Aliases: map[string][]string{"sales@x.org": {"bob@y.org"}}}, "alias sales@x.org points nowhere: bob@y.org"},
		{"alias bad target", Config{Domains: []string{"x.org"}, Users: []User{u("bob@x.org")}, Aliases: map[string][]string{"sales@x.org": {"b b@x.org"}}}, `alias sales@x.org points to an invalid address "b b@x.org"`},
		{"alias self", Config{Domains: []string{"x.org"}, Users: []User{u("bob@x.org")}, Aliases: map[string][]string{"a@x.org": {"A@x.org"}}}, "alias a@x.org points to itself"},
		{"alias loop", Config{Domains: []string{"x.org"}, Users: []User{u("bob@x.org")}, Aliases: map[string][]string{"a@x.org": {"b@x.org"}, "b@x.org": {"a@x.org"}}}, "alias loop: a@x.org → b@x.org → a@x.org"},
		{"alias two deep", Config{Domains: []string{"x.org"}, Users: []User{u("bob@x.org")}, Aliases: map[string][]string{"a@x.org": {"b@x.org"}, "b@x.org": {"c@x.org"}, "c@x.org": {"bob@x.org"}}}, "alias a@x.org points to b@x.org, which points to alias c@x.org"},
		{"alias via nowhere", Config{Domains: []string{"x.org"}, Users: []User{u("bob@x.org")}, Aliases: map[string][]string{"a@x.org": {"b@x.org"}, "b@x.org": {"zed@x.org"}}}, "alias b@x.org points nowhere: zed@x.org"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(c.cfg)
			if err == nil {
				t.Fatal("New accepted an invalid config")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not mention %q", err, c.want)
			}
		})
	}
}

// Every problem is reported, not just the first, so one check-config run
// shows them all.
func TestConfigReportsAllProblems(t *testing.T) {
	_, err := New(Config{
		Domains: []string{"x.org"},
		Users:   []User{{Address: "a@y.org"}, {Address: "b@x.org", Password: "{MD5}x"}},
		Aliases: map[string][]string{"s@x.org": {"nobody@x.org"}},
	})
	for _, want := range []string{"a@y.org", "b@x.org", "nobody@x.org"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %s", err, want)
		}
	}

	// A user with a bad password is one error, not also one per alias
	// pointing at them.
	_, err = New(Config{
		Domains: []string{"x.org"},
		Users:   []User{{Address: "b@x.org", Password: "{MD5}x"}},
		Aliases: map[string][]string{"s@x.org": {"b@x.org"}},
	})
	if err == nil || strings.Contains(err.Error(), "points nowhere") || strings.Count(err.Error(), "\n") != 0 {
		t.Errorf("error %q", err)
	}
}
