package pop3d

import (
	"strings"
	"testing"
)

func TestParseCommand(t *testing.T) {
	tests := []struct {
		line string
		verb string
		args []string
		err  error
	}{
		{"STAT", "STAT", nil, nil},
		{"stat", "STAT", nil, nil},
		{"LiSt 3", "LIST", []string{"3"}, nil},
		{"TOP 1 10", "TOP", []string{"1", "10"}, nil},
		{"PASS my secret  pw", "PASS", []string{"my", "secret", "pw"}, nil},
		{"", "", nil, errEmptyLine},
		{"ST", "", nil, errBadKeyword},
		{"STATS", "", nil, errBadKeyword},
		{"ST4T", "", nil, errBadKeyword},
		{"RETR 1 2 3", "", nil, errTooManyArgs},
		{"NOOP\x00", "", nil, errBadChars},
		{"\x16\x03\x01", "", nil, errBadChars},
	}
	for _, tt := range tests {
		cmd, err := parseCommand(tt.line)
		if err != tt.err {
			t.Errorf("%q: err %v, want %v", tt.line, err, tt.err)
			continue
		}
		if err == nil && (cmd.verb != tt.verb || strings.Join(cmd.args, "|") != strings.Join(tt.args, "|")) {
			t.Errorf("%q: got %q %q", tt.line, cmd.verb, cmd.args)
		}
	}
	if c, _ := parseCommand("PASS my secret  pw"); c.rest != "my secret  pw" {
		t.Errorf("PASS rest = %q", c.rest)
	}
}

func TestParseMsgNum(t *testing.T) {
	for s, want := range map[string]int{"1": 1, "007": 7, "2147483647": 2147483647} {
		if n, err := parseMsgNum(s); err != nil || n != want {
			t.Errorf("%q: %d %v", s, n, err)
		}
	}
	for _, s := range []string{"0", "-1", "+1", "1x", "", "2147483648", "99999999999", "0x1"} {
		if _, err := parseMsgNum(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{"STAT", "LIST 1", "TOP 1 0", "PASS a b", "AUTH PLAIN AGEAYg==", "uidl 99999999999", "\xff\xfe", "RETR -1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		cmd, err := parseCommand(line)
		if err != nil {
			return
		}
		if len(cmd.verb) < 3 || len(cmd.verb) > 4 || strings.ToUpper(cmd.verb) != cmd.verb {
			t.Fatalf("bad verb %q from %q", cmd.verb, line)
		}
		for _, a := range cmd.args {
			if a == "" || strings.ContainsAny(a, " \r\n") {
				t.Fatalf("bad arg %q from %q", a, line)
			}
			if n, err := parseMsgNum(a); err == nil && n < 1 {
				t.Fatalf("message number %d from %q", n, a)
			}
		}
	})
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"PASS secret":              "PASS <redacted>",
		"pass two words":           "pass <redacted>",
		"PASS\tsecret":             "PASS <redacted>",
		"PASS":                     "PASS",
		"AUTH PLAIN AGFAYgBj":      "AUTH PLAIN <redacted>",
		"AUTH PLAIN":               "AUTH PLAIN",
		"AUTH":                     "AUTH",
		"AUTH\tPLAIN\tAGFAYgBj":    "AUTH <redacted>",
		"auth login  YWxpY2U=":     "auth login <redacted>",
		"USER alice@example.org":   "USER alice@example.org",
		"PASSWORD is not a verb 1": "PASS <redacted>",
	} {
		if got := redact(in); got != want {
			t.Errorf("redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzRedact: no argument of PASS or AUTH survives redaction.
func FuzzRedact(f *testing.F) {
	f.Add("PASS x", "secret")
	f.Add("AUTH PLAIN ", "AGFAYgBj")
	f.Fuzz(func(t *testing.T, prefix, secret string) {
		if len(secret) < 4 || strings.ContainsAny(secret, " \t\r\n") {
			return
		}
		for _, verb := range []string{"PASS ", "pass\t", "AUTH PLAIN ", "AUTH\t", "auth x "} {
			if got := redact(verb + prefix + secret); strings.Contains(got, secret) && !strings.Contains(verb, secret) {
				t.Fatalf("redact(%q) = %q", verb+prefix+secret, got)
			}
		}
	})
}
