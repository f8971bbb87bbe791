package smtpd

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailsuite/mailsuite/internal/testkit"
)

func needTool(t *testing.T, name string) string { return testkit.NeedTool(t, name) }

func runTool(t *testing.T, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
}

// stored checks that user's INBOX holds one message with subject.
func (e *testEnv) stored(t *testing.T, user, subject string) {
	t.Helper()
	for _, m := range e.inbox(t, user) {
		if strings.Contains(m, "Subject: "+subject+"\r\n") || strings.Contains(m, "Subject: "+subject+"\n") {
			return
		}
	}
	t.Errorf("%s has no message %q", user, subject)
}

// realClientServers starts an MX, a STARTTLS submission and an implicit
// TLS submission server over one store.
func realClientServers(t *testing.T) (env *testEnv, sub, subs string, cafile string) {
	env = startServer(t, nil)
	tlsConf := serverTLS(t)
	base := env.srv.opts
	base.Role = RoleSubmission
	base.TLSMode, base.TLSConfig = TLSOptional, tlsConf
	_, sub = serve(t, base)
	base.TLSMode = TLSImplicit
	_, subs = serve(t, base)
	cafile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(cafile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return env, sub, subs, cafile
}

func TestPythonSmtplib(t *testing.T) {
	py := needTool(t, "python3")
	env, sub, subs, ca := realClientServers(t)
	script := filepath.Join("testdata", "smtplib_client.py")
	hostPort := func(a string) (string, string) { h, p, _ := strings.Cut(a, ":"); return h, p }
	cases := []struct {
		name, mode, addr, from, to string
		auth                       []string
	}{
		{"mx", "plain", env.addr, "someone@remote.test", "alice@example.com", nil},
		{"starttls-plain", "starttls", sub, "alice@example.com", "bob@example.com", []string{"alice@example.com", "alicepw", "PLAIN"}},
		{"starttls-login", "starttls", sub, "bob@example.com", "alice@example.com", []string{"bob@example.com", "bobpw", "LOGIN"}},
		{"starttls-cram", "starttls", sub, "carol@example.org", "alice@example.com", []string{"carol@example.org", "carolpw", "CRAM-MD5"}},
		{"implicit-plain", "implicit", subs, "alice@example.com", "carol@example.org", []string{"alice@example.com", "alicepw", "PLAIN"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, p := hostPort(c.addr)
			subject := "smtplib " + c.name
			runTool(t, py, append([]string{script, c.mode, h, p, ca, c.from, c.to, subject}, c.auth...)...)
			env.stored(t, c.to, subject)
		})
	}
}

func TestSwaks(t *testing.T) {
	swaks := needTool(t, "swaks")
	env, sub, subs, _ := realClientServers(t)
	cases := []struct {
		name string
		to   string
		args []string
	}{
		{"mx-pipeline", "alice@example.com", []string{"--server", env.addr, "--from", "x@remote.test", "--pipeline"}},
		{"starttls-plain", "bob@example.com", []string{"--server", sub, "--from", "alice@example.com", "-tls", "-a", "PLAIN", "-au", "alice@example.com", "-ap", "alicepw"}},
		{"starttls-login-pipeline", "carol@example.org", []string{"--server", sub, "--from", "bob@example.com", "-tls", "--pipeline", "-a", "LOGIN", "-au", "bob@example.com", "-ap", "bobpw"}},
		{"starttls-cram", "alice@example.com", []string{"--server", sub, "--from", "carol@example.org", "-tls", "-a", "CRAM-MD5", "-au", "carol@example.org", "-ap", "carolpw"}},
		{"implicit-cram", "bob@example.com", []string{"--server", subs, "--from", "alice@example.com", "-tlsc", "-a", "CRAM-MD5", "-au", "alice@example.com", "-ap", "alicepw"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			subject := "swaks " + c.name
			args := append([]string{"--to", c.to, "--helo", "swaks.test", "--header", "Subject: " + subject, "--timeout", "20"}, c.args...)
			runTool(t, swaks, args...)
			env.stored(t, c.to, subject)
		})
	}
	// swaks reports failure too: an unowned sender is refused.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, swaks, "--server", sub, "--to", "bob@example.com", "--from", "bob@example.com",
		"-tls", "-a", "PLAIN", "-au", "alice@example.com", "-ap", "alicepw").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "550 5.7.1") {
		t.Errorf("swaks with a foreign sender: err %v, output:\n%s", err, out)
	}
}
