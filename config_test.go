package mailsuite

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailsuite/mailsuite/accounts"
)

var update = flag.Bool("update", false, "rewrite golden files")

// Each testdata/badconfig/NAME.ini must be refused with exactly the message
// in NAME.err: the file, the line where known, the section and the key.
func TestBadConfigs(t *testing.T) {
	inis, err := filepath.Glob("testdata/badconfig/*.ini")
	if err != nil || len(inis) == 0 {
		t.Fatalf("no bad configs found: %v", err)
	}
	for _, ini := range inis {
		name := strings.TrimSuffix(filepath.Base(ini), ".ini")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(ini)
			if err != nil {
				t.Fatal(err)
			}
			_, err = ParseConfig(ini, data)
			if err == nil {
				t.Fatalf("%s was accepted", ini)
			}
			golden := strings.TrimSuffix(ini, ".ini") + ".err"
			if *update {
				os.WriteFile(golden, []byte(err.Error()+"\n"), 0o644)
				return
			}
			want, rerr := os.ReadFile(golden)
			if rerr != nil {
				t.Fatalf("missing golden file (run go test -run TestBadConfigs -update): %v", rerr)
			}
			if got := err.Error(); got != strings.TrimSpace(string(want)) {
				t.Errorf("error:\n got %s\nwant %s", got, want)
			}
		})
	}
}

// The shipped mail.ini must load and be what the README promises.
func TestShippedConfig(t *testing.T) {
	c, err := LoadConfig("mail.ini")
	if err != nil {
		t.Fatal(err)
	}
	wantPorts := map[string]string{
		"smtp": "127.0.0.1:2025", "submission": "127.0.0.1:2587", "submissions": "127.0.0.1:2465",
		"pop3": "127.0.0.1:2110", "pop3s": "127.0.0.1:2995", "imap": "127.0.0.1:2143", "imaps": "127.0.0.1:2993",
	}
	for _, l := range c.listeners() {
		if l.L.Listen != wantPorts[l.Name] {
			t.Errorf("[%s] listen = %q, want %q", l.Name, l.L.Listen, wantPorts[l.Name])
		}
	}
	if c.Submission.TLS != TLSRequired || c.Submissions.TLS != TLSImplicit || c.IMAPS.TLS != TLSImplicit || c.POP3S.TLS != TLSImplicit {
		t.Errorf("TLS modes: submission %s, submissions %s, imaps %s, pop3s %s", c.Submission.TLS, c.Submissions.TLS, c.IMAPS.TLS, c.POP3S.TLS)
	}
	if len(c.Server.Domains) != 1 || c.Server.Domains[0] != "example.com" {
		t.Errorf("domains = %v", c.Server.Domains)
	}
	abs, _ := filepath.Abs("data")
	if c.Server.DataDir != abs {
		t.Errorf("data_dir = %q, want %q (relative to the file)", c.Server.DataDir, abs)
	}
	if len(c.Users) != 1 || c.Users[0].Address != DemoUser {
		t.Errorf("users = %+v, want only the demo user", c.Users)
	}
	if _, err := accountsFor(c).Authenticate(context.Background(), DemoUser, "demo-change-me"); err != nil {
		t.Errorf("the README's demo password does not log in: %v", err)
	}
	if c.Server.PlaintextAuthOnLoopback {
		t.Error("plaintext auth on loopback must be off by default")
	}
	if len(c.SMTP.TrustedNetworks) != 0 {
		t.Error("the shipped config must not relay for anyone")
	}
	if w := c.publicListeners(); len(w) != 0 {
		t.Errorf("shipped listeners beyond loopback: %v", w)
	}
}

func TestDemoUserWarnedWhenExposed(t *testing.T) {
	data, err := os.ReadFile("mail.ini")
	if err != nil {
		t.Fatal(err)
	}
	exposed := strings.Replace(string(data), "listen = 127.0.0.1:2025", "listen = 0.0.0.0:25", 1)
	c, err := ParseConfig(filepath.Join(t.TempDir(), "mail.ini"), []byte(exposed))
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, w := range c.Warnings() {
		found = found || strings.Contains(w, "demo user") && strings.Contains(w, "[smtp]")
	}
	if !found {
		t.Fatalf("no demo-user warning for a public listener; warnings: %q", c.Warnings())
	}
}

func TestValuesAndDefaults(t *testing.T) {
	c, err := ParseConfig("/etc/mailsuite/mail.ini", []byte(`
[server]
domains = example.com, Example.org
data_dir = ../spool   ; relative to the file
[limits]
max_message_size = 10M
command_timeout = 90s
[smtp]
listen = [::1]:2525
trusted_networks = 192.0.2.0/24, 2001:db8::1
[tls]
cert_file = /etc/ssl/mail.pem
key_file = key.pem
[user bob@example.com]
password = "pa;ss#word with spaces"
quota = 512K
aliases = robert@example.com bobby@example.org
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.DataDir != "/etc/spool" || c.TLS.KeyFile != "/etc/mailsuite/key.pem" || c.TLS.CertFile != "/etc/ssl/mail.pem" {
		t.Errorf("paths: data %q key %q cert %q", c.Server.DataDir, c.TLS.KeyFile, c.TLS.CertFile)
	}
	if c.Limits.MaxMessageSize != 10<<20 || c.Limits.CommandTimeout != 90*time.Second || c.Limits.MaxRecipients != 100 {
		t.Errorf("limits: %+v", c.Limits)
	}
	if n := c.SMTP.TrustedNetworks; len(n) != 2 || n[1].String() != "2001:db8::1/128" {
		t.Errorf("trusted networks: %v", n)
	}
	u := c.Users[0]
	if u.Password != "pa;ss#word with spaces" || u.Quota != 512<<10 || len(u.Aliases) != 2 {
		t.Errorf("user: %+v", u)
	}
	if c.Submission.TLS != TLSRequired || c.Submission.Listen != "" {
		t.Errorf("an absent section keeps its defaults and stays off: %+v", c.Submission)
	}
	// No {SCHEME} prefix: a plain-text password, which start-up warns about.
	if len(c.PlaintextPasswords) != 1 || len(c.Warnings()) != 1 {
		t.Errorf("plain-text passwords %v, warnings %q", c.PlaintextPasswords, c.Warnings())
	}
}

// FuzzParseConfig: any bytes give a config or an error naming the file,
// never a panic.
func FuzzParseConfig(f *testing.F) {
	shipped, _ := os.ReadFile("mail.ini")
	f.Add(shipped)
	f.Add([]byte(testConfig))
	bad, _ := filepath.Glob("testdata/badconfig/*.ini")
	for _, b := range bad {
		data, _ := os.ReadFile(b)
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig("/fuzz/mail.ini", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "/fuzz/mail.ini") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if len(c.Server.Domains) == 0 {
			t.Fatal("accepted a config without domains")
		}
	})
}

func accountsFor(c *Config) *accounts.Directory {
	d, err := accounts.New(c.AccountsConfig())
	if err != nil {
		panic(err)
	}
	return d
}
