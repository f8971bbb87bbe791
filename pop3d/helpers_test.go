package pop3d

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailsuite/mailsuite/internal/testkit"

	"github.com/mailsuite/mailsuite/accounts"
	"github.com/mailsuite/mailsuite/mailstore"
)

const (
	alice     = "alice@example.org"
	alicePass = "correct horse"
	bob       = "bob@example.org"
	bobPass   = "hunter2"
)

// testAccounts is the inline account list every test server uses.
func testAccounts() accounts.Config {
	return accounts.Config{
		Domains: []string{"example.org"},
		Users: []accounts.User{
			{Address: alice, Password: "{PLAIN}" + alicePass, CRAMMD5: accounts.CRAMMD5Secret(alicePass)},
			{Address: bob, Password: "{PLAIN}" + bobPass},
		},
		Logger: slog.New(slog.DiscardHandler),
	}
}

type testEnv struct {
	t         testing.TB
	addr      string
	root      string
	store     *mailstore.Store
	dir       *accounts.Directory
	srv       *Server
	serverTLS *tls.Config
	clientTLS *tls.Config
	serveErr  chan error
}

var (
	certOnce sync.Once
	certVal  tls.Certificate
	certPool *x509.CertPool
)

// testCert is a throwaway self-signed certificate for 127.0.0.1, made once
// per test binary.
func testCert(t testing.TB) (tls.Certificate, *x509.CertPool) {
	certOnce.Do(func() {
		c := testkit.SelfSigned(t, "127.0.0.1", "localhost") // fetchmail checks the CN
		certVal, certPool = c.TLS, c.Pool
	})
	return certVal, certPool
}

// startServer runs a server with a real mailstore in a temp dir, the inline
// accounts and TLS, on 127.0.0.1:0. mods adjust the Options.
func startServer(t testing.TB, mods ...func(*Options)) *testEnv {
	t.Helper()
	root := t.TempDir()
	store, err := mailstore.Open(mailstore.Options{Root: root, Hostname: "test.example.org",
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("mailstore.Open: %v", err)
	}
	t.Cleanup(func() { store.Close() })
	dir, err := accounts.New(testAccounts())
	if err != nil {
		t.Fatalf("accounts.New: %v", err)
	}
	env := &testEnv{t: t, root: root, store: store, dir: dir}
	env.start(mods...)
	return env
}

// start (re)starts the server on a new port over env's store and accounts.
func (env *testEnv) start(mods ...func(*Options)) {
	t := env.t
	cert, pool := testCert(t)
	env.serverTLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	env.clientTLS = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	opts := Options{
		Hostname:  "pop.example.org",
		Logger:    slog.New(slog.DiscardHandler),
		Accounts:  env.dir,
		Store:     env.store,
		TLSMode:   TLSOptional,
		TLSConfig: env.serverTLS,
	}
	for _, m := range mods {
		m(&opts)
	}
	srv, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	env.srv, env.addr = srv, ln.Addr().String()
	serveErr := make(chan error, 1)
	env.serveErr = serveErr
	go func() { serveErr <- srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
}

// deliver stores msg in user's INBOX through the mailstore, as SMTP would.
func (env *testEnv) deliver(user, msg string) {
	env.t.Helper()
	d, err := env.store.BeginDelivery()
	if err != nil {
		env.t.Fatal(err)
	}
	if _, err := io.WriteString(d, msg); err != nil {
		env.t.Fatal(err)
	}
	if err := d.Commit(context.Background(), []string{user}); err != nil {
		env.t.Fatal(err)
	}
	// UIDs are assigned when the store syncs; syncing after each delivery
	// makes UID order delivery order, which the transcripts rely on.
	env.inbox(user)
}

// inbox returns the current INBOX listing of user.
func (env *testEnv) inbox(user string) (*mailstore.Folder, []mailstore.MessageInfo) {
	env.t.Helper()
	u, err := env.store.User(user)
	if err != nil {
		env.t.Fatal(err)
	}
	f, err := u.Folder(mailstore.Inbox)
	if err != nil {
		env.t.Fatal(err)
	}
	msgs, err := f.Sync()
	if err != nil {
		env.t.Fatal(err)
	}
	return f, msgs
}

// client is a raw POP3 client for transcripts.
type client struct {
	t  testing.TB
	nc net.Conn
	r  *bufio.Reader
}

func (env *testEnv) dial() *client {
	env.t.Helper()
	nc, err := net.DialTimeout("tcp", env.addr, 5*time.Second)
	if err != nil {
		env.t.Fatal(err)
	}
	env.t.Cleanup(func() { nc.Close() })
	return &client{t: env.t, nc: nc, r: bufio.NewReader(nc)}
}

// login dials, reads the greeting, upgrades with STLS and logs in.
func (env *testEnv) login(user, pass string) *client {
	env.t.Helper()
	c := env.dial()
	c.expect("+OK ")
	c.stls(env.clientTLS)
	c.send("USER " + user)
	c.expect("+OK")
	c.send("PASS " + pass)
	c.expect("+OK maildrop has")
	return c
}

func (c *client) send(lines ...string) {
	c.t.Helper()
	c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c.nc, strings.Join(lines, "\r\n")+"\r\n"); err != nil {
		c.t.Fatalf("send %q: %v", lines, err)
	}
}

func (c *client) readLine() (string, error) {
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	l, err := c.r.ReadString('\n')
	if err != nil {
		return l, err
	}
	if !strings.HasSuffix(l, "\r\n") {
		c.t.Fatalf("line without CRLF: %q", l)
	}
	return strings.TrimSuffix(l, "\r\n"), nil
}

// expect reads a line and checks that it starts with prefix.
func (c *client) expect(prefix string) string {
	c.t.Helper()
	l, err := c.readLine()
	if err != nil {
		c.t.Fatalf("want %q, read error %v", prefix, err)
	}
	if !strings.HasPrefix(l, prefix) {
		c.t.Fatalf("got %q, want prefix %q", l, prefix)
	}
	return l
}

// multi reads a multi-line body up to ".", raw lines (still dot-stuffed).
func (c *client) multi() []string {
	c.t.Helper()
	var out []string
	for i := 0; i < 1_000_000; i++ {
		l, err := c.readLine()
		if err != nil {
			c.t.Fatalf("multi-line: %v after %q", err, out)
		}
		if l == "." {
			return out
		}
		out = append(out, l)
	}
	c.t.Fatal("multi-line body too long")
	return nil
}

// stls runs STLS and the handshake.
func (c *client) stls(cfg *tls.Config) {
	c.t.Helper()
	c.send("STLS")
	c.expect("+OK")
	tc := tls.Client(c.nc, cfg)
	tc.SetDeadline(time.Now().Add(5 * time.Second))
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("TLS handshake: %v", err)
	}
	c.nc, c.r = tc, bufio.NewReader(tc)
}

// expectClosed checks that the server closes the connection.
func (c *client) expectClosed() {
	c.t.Helper()
	l, err := c.readLine()
	if err == nil {
		c.t.Fatalf("want close, got %q", l)
	}
	if !errors.Is(err, io.EOF) && !isConnReset(err) {
		c.t.Fatalf("want EOF, got %v", err)
	}
}

func isConnReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

// run plays a transcript: "C: line" is sent (consecutive C: lines in one
// write, i.e. pipelined), "S: text" expects a line starting with text,
// "S= text" an exact line, "S~ re" a line matching the regexp fully, and
// "S: ..." skips lines up to and including the next ".".
func (c *client) run(script string) {
	c.t.Helper()
	var pending []string
	flush := func() {
		if len(pending) > 0 {
			c.send(pending...)
			pending = nil
		}
	}
	for _, raw := range strings.Split(strings.TrimSpace(script), "\n") {
		l := strings.TrimSpace(raw)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		kind, text := l[:2], ""
		if len(l) > 3 {
			text = l[3:]
		}
		if kind == "C:" {
			pending = append(pending, text)
			continue
		}
		flush()
		switch kind {
		case "S:":
			if text == "..." {
				c.multi()
				continue
			}
			c.expect(text)
		case "S=":
			if got := c.expect(""); got != text {
				c.t.Fatalf("got %q, want %q", got, text)
			}
		case "S~":
			got := c.expect("")
			if !regexp.MustCompile("^(?:" + text + ")$").MatchString(got) {
				c.t.Fatalf("got %q, want /%s/", got, text)
			}
		default:
			c.t.Fatalf("bad transcript line %q", raw)
		}
	}
	flush()
}
