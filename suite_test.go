package mailsuite

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testConfig is a mail.ini with every listener on a free loopback port.
const testConfig = `
[server]
hostname = mail.example.com
domains = example.com
data_dir = data
plaintext_auth_on_loopback = true
[smtp]
listen = 127.0.0.1:0
[submission]
listen = 127.0.0.1:0
[submissions]
listen = 127.0.0.1:0
[pop3]
listen = 127.0.0.1:0
[pop3s]
listen = 127.0.0.1:0
[imap]
listen = 127.0.0.1:0
[imaps]
listen = 127.0.0.1:0
[aliases]
team@example.com = alice@example.com, bob@example.com
[user alice@example.com]
password = {PLAIN}alice-password
[user bob@example.com]
password = {PLAIN}bob-password
`

func startSuite(t *testing.T, ini string) (*Suite, string) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "mail.ini")
	if err := os.WriteFile(path, []byte(ini), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	s, err := New(cfg, Options{Logger: log, ReloadInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return s, path
}

// greeting dials a listener (through TLS for implicit ones) and returns the
// first line the server sends.
func greeting(t *testing.T, s *Suite, name string, implicit bool) string {
	t.Helper()
	addr := s.Addr(name)
	if addr == nil {
		t.Fatalf("listener %s is not open", name)
	}
	var c net.Conn
	var err error
	d := &net.Dialer{Timeout: 5 * time.Second}
	if implicit {
		c, err = tls.DialWithDialer(d, "tcp", addr.String(), &tls.Config{InsecureSkipVerify: true})
	} else {
		c, err = d.Dial("tcp", addr.String())
	}
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("%s greeting: %v", name, err)
	}
	return line
}

func TestSuiteOpensAllSevenListeners(t *testing.T) {
	s, _ := startSuite(t, testConfig)
	for _, tc := range []struct {
		name     string
		implicit bool
		prefix   string
	}{
		{"smtp", false, "220 "}, {"submission", false, "220 "}, {"submissions", true, "220 "},
		{"pop3", false, "+OK"}, {"pop3s", true, "+OK"},
		{"imap", false, "* OK"}, {"imaps", true, "* OK"},
	} {
		if g := greeting(t, s, tc.name, tc.implicit); !strings.HasPrefix(g, tc.prefix) {
			t.Errorf("%s greeted %q, want %q...", tc.name, g, tc.prefix)
		}
	}
}

func TestSelfSignedCertificateMadeOnFirstStart(t *testing.T) {
	s, _ := startSuite(t, testConfig)
	data, err := os.ReadFile(filepath.Join(s.Config().Server.DataDir, "tls", "selfsigned.crt"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatal("no PEM block in the certificate file")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"mail.example.com", "localhost"} {
		if err := cert.VerifyHostname(name); err != nil {
			t.Errorf("certificate does not cover %s: %v", name, err)
		}
	}
	if err := cert.VerifyHostname("127.0.0.1"); err != nil {
		t.Errorf("certificate does not cover 127.0.0.1: %v", err)
	}
	st, err := os.Stat(filepath.Join(s.Config().Server.DataDir, "tls", "selfsigned.key"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		t.Errorf("private key mode %v is readable by others", st.Mode().Perm())
	}
}

// Users added to mail.ini can log in within two seconds; an invalid edit
// keeps the old list; removed users are gone.
func TestAccountsReloadWhileRunning(t *testing.T) {
	s, path := startSuite(t, testConfig)
	ctx := context.Background()
	if _, err := s.Directory().Authenticate(ctx, "carol@example.com", "carol-password"); err == nil {
		t.Fatal("carol can log in before she exists")
	}
	withCarol := testConfig + "\n[user carol@example.com]\npassword = {PLAIN}carol-password\n"
	writeConfig(t, path, withCarol)
	waitFor(t, 2*time.Second, "carol to be able to log in", func() bool {
		_, err := s.Directory().Authenticate(ctx, "carol@example.com", "carol-password")
		return err == nil
	})

	// A broken edit (alias to nobody) must not drop anyone.
	writeConfig(t, path, withCarol+"\n[aliases]\nx@example.com = nobody@example.com\n")
	time.Sleep(500 * time.Millisecond) // several reload intervals
	if _, err := s.Directory().Authenticate(ctx, "carol@example.com", "carol-password"); err != nil {
		t.Fatalf("an invalid edit dropped carol: %v", err)
	}

	writeConfig(t, path, testConfig) // carol removed
	waitFor(t, 2*time.Second, "carol to be removed", func() bool {
		_, ok := s.Directory().Lookup("carol@example.com")
		return !ok
	})
}

func writeConfig(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil { // as editors do
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestStartFailsCleanlyWhenAPortIsTaken(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	ini := strings.Replace(testConfig, "[imaps]\nlisten = 127.0.0.1:0", "[imaps]\nlisten = "+busy.Addr().String(), 1)
	dir := t.TempDir()
	path := filepath.Join(dir, "mail.ini")
	os.WriteFile(path, []byte(ini), 0o600)
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	err = s.Start()
	if err == nil || !strings.Contains(err.Error(), "[imaps]") {
		t.Fatalf("Start = %v, want an error naming [imaps]", err)
	}
	if a := s.Addr("smtp"); a != nil {
		t.Fatalf("smtp stayed open at %v after a failed start", a)
	}
}
