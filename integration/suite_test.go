package integration

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailsuite/mailsuite"
)

// Test users. Passwords are {PLAIN} so that hashing does not dominate the
// run time of tests that log in hundreds of times.
var users = map[string]string{
	"alice@example.com":    "alice-secret-1",
	"bob@example.com":      "bob-secret-1",
	"dave@example.com":     "dave-secret-1",
	"catchall@example.com": "catchall-secret-1",
}

// baseConfig is mail.ini with every listener on a free loopback port. The
// per-IP connection limit is raised because every test client comes from
// 127.0.0.1; everything else is the shipped default.
const baseConfig = `[server]
hostname = mail.example.com
domains = example.com
data_dir = data
shutdown_grace = 5s
[limits]
max_connections_per_ip = 200
auth_free_failures = 50
auth_lockout_failures = 500
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
`

// officeAliases: an alias, a distribution list and (optionally) a catch-all.
const officeAliases = `[aliases]
sales@example.com = bob@example.com
team@example.com = bob@example.com, dave@example.com
`

// userSection is a [user] section with a {PLAIN} password.
func userSection(addr, pass string) string {
	return fmt.Sprintf("[user %s]\npassword = {PLAIN}%s\n", addr, pass)
}

// configWith builds a mail.ini from the base, extra sections and users.
func configWith(extra string, addrs ...string) string {
	var b strings.Builder
	b.WriteString(baseConfig)
	b.WriteString(extra)
	for _, a := range addrs {
		b.WriteString(userSection(a, users[a]))
	}
	return b.String()
}

// harness is one running suite in a temp dir.
type harness struct {
	t       testing.TB
	s       *mailsuite.Suite
	dir     string // holds mail.ini and data/
	iniPath string
	dataDir string
	tls     *tls.Config // trusts the suite's self-signed certificate
	logs    *logBuffer
}

// startSuite writes ini to a temp dir and starts the suite the way the
// binary does (LoadConfig, New, Start), with fast config reloads. The
// suite is shut down in Cleanup; if the test failed, the tail of its log
// is printed.
func startSuite(t testing.TB, ini string, opts mailsuite.Options) *harness {
	t.Helper()
	dir := t.TempDir()
	return startSuiteIn(t, dir, ini, opts)
}

func startSuiteIn(t testing.TB, dir, ini string, opts mailsuite.Options) *harness {
	t.Helper()
	h := &harness{t: t, dir: dir, iniPath: filepath.Join(dir, "mail.ini"), logs: &logBuffer{}}
	if err := os.WriteFile(h.iniPath, []byte(ini), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := mailsuite.LoadConfig(h.iniPath)
	if err != nil {
		t.Fatal(err)
	}
	h.dataDir = cfg.Server.DataDir
	if opts.Logger == nil {
		opts.Logger = newTestLogger(h.logs)
	}
	if opts.ReloadInterval == 0 {
		opts.ReloadInterval = 100 * time.Millisecond
	}
	h.s, err = mailsuite.New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.s.Start(); err != nil {
		t.Fatal(err)
	}
	h.tls = clientTLS(t, h.dataDir)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if t.Failed() {
			t.Logf("suite log (tail):\n%s", h.logs.tail(8000))
		}
	})
	return h
}

// clientTLS trusts the self-signed certificate the suite made in dataDir,
// so clients verify the server as real ones do (no InsecureSkipVerify).
func clientTLS(t testing.TB, dataDir string) *tls.Config {
	t.Helper()
	pem, err := os.ReadFile(filepath.Join(dataDir, "tls", "selfsigned.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("self-signed certificate does not parse")
	}
	return &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12}
}

func (h *harness) addr(name string) string {
	a := h.s.Addr(name)
	if a == nil {
		h.t.Fatalf("listener %s is not open", name)
	}
	return a.String()
}

// rewriteConfig replaces mail.ini as editors do (write a temp file, rename).
func (h *harness) rewriteConfig(content string) {
	h.t.Helper()
	tmp := h.iniPath + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		h.t.Fatal(err)
	}
	if err := os.Rename(tmp, h.iniPath); err != nil {
		h.t.Fatal(err)
	}
}

// maildir is a user's INBOX directory in the store.
func (h *harness) maildir(user string) string {
	local, domain, _ := strings.Cut(user, "@")
	return filepath.Join(h.dataDir, "mail", domain, local)
}

func newTestLogger(w *logBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// aliceMailsBob submits n messages from alice to bob over submission and
// returns their Message-IDs.
func (h *harness) aliceMailsBob(t testing.TB, n int, subject string) []string {
	t.Helper()
	var ids []string
	for i := range n {
		m := newMessage("alice@example.com", "bob@example.com", fmt.Sprintf("%s %d", subject, i), 3000)
		if err := submit(h.addr("submission"), h.tls, "alice@example.com", users["alice@example.com"], "alice@example.com", []string{"bob@example.com"}, m.Raw); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	return ids
}

// logBuffer collects the suite's log for printing when a test fails.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buf.Len() > 4<<20 { // bounded: keep the newest half
		keep := append([]byte(nil), l.buf.Bytes()[l.buf.Len()/2:]...)
		l.buf.Reset()
		l.buf.Write(keep)
	}
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) tail(n int) string {
	s := l.String()
	if len(s) > n {
		s = s[len(s)-n:]
	}
	return s
}

// waitFor polls cond every 20ms until it holds or limit passes.
func waitFor(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// errList collects errors from goroutines.
type errList struct {
	mu   sync.Mutex
	errs []error
}

func (e *errList) add(format string, args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.errs) < 50 {
		e.errs = append(e.errs, fmt.Errorf(format, args...))
	}
}

func (e *errList) report(t testing.TB) {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, err := range e.errs {
		t.Error(err)
	}
}
