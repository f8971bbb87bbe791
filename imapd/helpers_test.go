package imapd

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailsuite/mailsuite/internal/testkit"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailsuite/mailsuite/accounts"
	"github.com/mailsuite/mailsuite/mailstore"
)

const (
	alice   = "alice@example.org"
	alicePW = "alice-secret"
	bob     = "bob@example.org"
	bobPW   = "bob-secret"
)

// testEnv is a running server with its real store and directory.
type testEnv struct {
	addr        string
	srv         *Server
	store       *mailstore.Store
	dir         *accounts.Directory
	cfg         accounts.Config
	root        string
	certFile    string // PEM of the self-signed certificate, for real clients
	clientTLS   *tls.Config
	implicitTLS bool

	mu    sync.Mutex
	trace []string // hook calls, in order
}

func (e *testEnv) record(s string) {
	e.mu.Lock()
	e.trace = append(e.trace, s)
	e.mu.Unlock()
}

func (e *testEnv) traceSnapshot() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.trace...)
}

// startServer runs a server on 127.0.0.1:0 over a mailstore in a temp dir,
// with alice and bob from an inline account config and a self-signed
// certificate. mods adjust the options (TLS mode, hooks, limits).
func startServer(t testing.TB, mods ...any) *testEnv {
	t.Helper()
	root := t.TempDir()
	e := &testEnv{root: root}
	e.cfg = accounts.Config{
		Domains: []string{"example.org"},
		Users: []accounts.User{
			{Address: alice, Password: "{PLAIN}" + alicePW, CRAMMD5: accounts.CRAMMD5Secret(alicePW)},
			{Address: bob, Password: "{PLAIN}" + bobPW},
		},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	dir, err := accounts.New(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.dir = dir
	storeOpts := mailstore.Options{
		Root: filepath.Join(root, "mail"), Hostname: "test.example.org",
		PollInterval: 50 * time.Millisecond,
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	for _, m := range mods {
		if m, ok := m.(func(*mailstore.Options)); ok {
			m(&storeOpts)
		}
	}
	store, err := mailstore.Open(storeOpts)
	if err != nil {
		t.Fatal(err)
	}
	e.store = store
	cert, certPEM := selfSigned(t)
	e.certFile = filepath.Join(root, "cert.pem")
	if err := os.WriteFile(e.certFile, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	e.clientTLS = clientTLSFromPEM(certPEM)

	opts := Options{
		Hostname:          "imap.example.org",
		Accounts:          dir,
		Store:             store,
		TLSMode:           TLSOptional,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}},
		AllowInsecureAuth: true,
		Logger:            slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Hooks: Hooks{
			OnCommand: func(id, line string) { e.record("C " + line) },
			OnReply:   func(id, line string) { e.record("S " + line) },
			OnAuth: func(_ net.Addr, user, mech string, ok bool) {
				e.record(fmt.Sprintf("AUTH %s %s %v", user, mech, ok))
			},
			OnClose: func(id string) { e.record("CLOSE") },
		},
	}
	for _, m := range mods {
		if m, ok := m.(func(*Options)); ok {
			m(&opts)
		}
	}
	srv, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	e.implicitTLS = opts.TLSMode == TLSImplicit
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = ln.Addr().String()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("Serve did not return after Close")
		}
		store.Close()
	})
	return e
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func selfSigned(t testing.TB) (tls.Certificate, []byte) {
	t.Helper()
	c := testkit.SelfSigned(t, "127.0.0.1", "localhost") // mbsync matches the CN against the host
	return c.TLS, c.PEM
}

// deliver stores msg for users the way SMTP does (Delivery.Commit).
func (e *testEnv) deliver(t testing.TB, msg string, users ...string) {
	t.Helper()
	d, err := e.store.BeginDelivery()
	if err != nil {
		t.Fatal(err)
	}
	defer d.Abort()
	if _, err := io.WriteString(d, msg); err != nil {
		t.Fatal(err)
	}
	if err := d.Commit(context.Background(), users); err != nil {
		t.Fatal(err)
	}
	// Assign UIDs now, so they follow delivery order in tests (the store
	// names files in new/ in an order of its own).
	for _, u := range users {
		h, err := e.store.User(u)
		if err != nil {
			t.Fatal(err)
		}
		f, err := h.Folder(mailstore.Inbox)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Sync(); err != nil {
			t.Fatal(err)
		}
	}
}

// client logs in with imapclient over STARTTLS.
func (e *testEnv) client(t testing.TB, user, pw string, h *imapclient.UnilateralDataHandler) *imapclient.Client {
	t.Helper()
	dial := imapclient.DialStartTLS
	if e.implicitTLS {
		dial = imapclient.DialTLS
	}
	c, err := dial(e.addr, &imapclient.Options{TLSConfig: e.clientTLS, UnilateralDataHandler: h})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login(user, pw).Wait(); err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	return c
}

// rawConn is a line-level client for transcript tests.
type rawConn struct {
	t   testing.TB
	c   net.Conn
	r   *bufio.Reader
	tag int
}

func (e *testEnv) raw(t testing.TB) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	rc := &rawConn{t: t, c: c, r: bufio.NewReader(c)}
	rc.expect(`^\* OK `)
	return rc
}

func (rc *rawConn) readLine() string {
	rc.t.Helper()
	rc.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := rc.r.ReadString('\n')
	if err != nil {
		rc.t.Fatalf("reading: %v (after %q)", err, line)
	}
	return strings.TrimRight(line, "\r\n")
}

// expect reads one line and checks it against a regexp.
func (rc *rawConn) expect(pattern string) string {
	rc.t.Helper()
	line := rc.readLine()
	if !regexp.MustCompile(pattern).MatchString(line) {
		rc.t.Fatalf("got %q, want match for %q", line, pattern)
	}
	return line
}

func (rc *rawConn) send(line string) {
	rc.t.Helper()
	if _, err := io.WriteString(rc.c, line+"\r\n"); err != nil {
		rc.t.Fatal(err)
	}
}

// cmd sends a tagged command and returns the untagged lines and the tagged
// completion line.
func (rc *rawConn) cmd(line string) (untagged []string, done string) {
	rc.t.Helper()
	rc.tag++
	tag := fmt.Sprintf("T%d", rc.tag)
	rc.send(tag + " " + line)
	for {
		l := rc.readLine()
		if strings.HasPrefix(l, tag+" ") {
			return untagged, strings.TrimPrefix(l, tag+" ")
		}
		untagged = append(untagged, l)
	}
}

// ok runs a command that must succeed.
func (rc *rawConn) ok(line string) []string {
	rc.t.Helper()
	u, done := rc.cmd(line)
	if !strings.HasPrefix(done, "OK") {
		rc.t.Fatalf("%s: %s (untagged %q)", line, done, u)
	}
	return u
}

func (rc *rawConn) startTLS(cfg *tls.Config) {
	rc.t.Helper()
	rc.ok("STARTTLS")
	tc := tls.Client(rc.c, cfg)
	if err := tc.Handshake(); err != nil {
		rc.t.Fatal(err)
	}
	rc.c = tc
	rc.r = bufio.NewReader(tc)
}

func hasLine(lines []string, pattern string) bool {
	re := regexp.MustCompile(pattern)
	for _, l := range lines {
		if re.MatchString(l) {
			return true
		}
	}
	return false
}

// waitFor polls cond for up to d.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return cond()
}

func testMsg(subject, body string) string {
	return "From: Carol <carol@example.net>\r\nTo: alice@example.org\r\nSubject: " + subject +
		"\r\nDate: Mon, 02 Jan 2006 15:04:05 -0700\r\nMessage-ID: <" + subject + "@example.net>\r\n\r\n" + body + "\r\n"
}

// try sends a tagged command and returns its completion, or "" if the
// server closed the connection instead.
func (rc *rawConn) try(line string) string {
	rc.tag++
	tag := fmt.Sprintf("T%d", rc.tag)
	if _, err := io.WriteString(rc.c, tag+" "+line+"\r\n"); err != nil {
		return ""
	}
	for {
		rc.c.SetReadDeadline(time.Now().Add(5 * time.Second))
		l, err := rc.r.ReadString('\n')
		if err != nil {
			return ""
		}
		if strings.HasPrefix(l, tag+" ") {
			return strings.TrimRight(strings.TrimPrefix(l, tag+" "), "\r\n")
		}
	}
}

func clientTLSFromPEM(certPEM []byte) *tls.Config {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	return &tls.Config{RootCAs: pool, ServerName: "localhost"}
}

func regexpMatch(pattern, s string) bool { return regexp.MustCompile(pattern).MatchString(s) }
