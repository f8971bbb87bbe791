package smtpd

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
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

	"github.com/mailsuite/mailsuite/accounts"
	"github.com/mailsuite/mailsuite/mailstore"
)

// testConfig is the account list every test server uses. Passwords are
// {PLAIN} so CRAM-MD5 works and tests stay fast.
func testConfig() accounts.Config {
	return accounts.Config{
		Domains: []string{"example.com", "example.org"},
		Users: []accounts.User{
			{Address: "alice@example.com", Password: "{PLAIN}alicepw", Aliases: []string{"sales@example.com"}},
			{Address: "bob@example.com", Password: "{PLAIN}bobpw"},
			{Address: "carol@example.org", Password: "{PLAIN}carolpw"},
			{Address: "dave@example.com", Password: "{PLAIN}davepw", Quota: 1000},
		},
		Aliases: map[string][]string{
			"team@example.com": {"alice@example.com", "bob@example.com", "carol@example.org"},
			"both@example.com": {"alice@example.com", "bob@example.com"},
			"@example.org":     {"carol@example.org"},
		},
		Logger: slog.New(slog.DiscardHandler),
	}
}

type testEnv struct {
	srv   *Server
	addr  string
	dir   *accounts.Directory
	store *mailstore.Store
	root  string
	relay *recordingRelay
}

// startServer starts a server on 127.0.0.1:0 with a real mailstore in a
// temp dir and the accounts of testConfig; edit adjusts the options.
func startServer(t testing.TB, edit func(*Options)) *testEnv {
	t.Helper()
	dir, err := accounts.New(testConfig())
	if err != nil {
		t.Fatalf("accounts.New: %v", err)
	}
	root := storeRoot(t)
	store, err := mailstore.Open(mailstore.Options{
		Root: root, Hostname: "mx.test",
		Quota: func(u string) int64 {
			if usr, ok := dir.Lookup(u); ok {
				return usr.Quota
			}
			return 0
		},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatalf("mailstore.Open: %v", err)
	}
	t.Cleanup(func() { store.Close() })
	env := &testEnv{dir: dir, store: store, root: root, relay: &recordingRelay{}}
	opts := Options{
		Hostname:  "mx.test",
		Directory: dir,
		Store:     store,
		Relay:     env.relay,
		Logger:    slog.New(slog.DiscardHandler),
		Now:       func() time.Time { return time.Date(2026, 11, 22, 16, 0, 0, 0, time.UTC) },
	}
	if edit != nil {
		edit(&opts)
	}
	env.srv, env.addr = serve(t, opts)
	return env
}

// storeRoot is a fresh directory for a test's store. A benchmark's is kept
// until the process ends (TestMain): removing each round's store at once
// frees thousands of inodes, and ext4 without a journal then skips
// recently freed inodes when allocating new ones, re-reading each one's
// inode block, so the next round's file creation slowed here from 4 µs to
// 240 µs of CPU. That is the benchmark's cleanup, not mail delivery.
func storeRoot(t testing.TB) string {
	b, ok := t.(*testing.B)
	if !ok {
		return t.TempDir()
	}
	benchDirs.once.Do(func() { benchDirs.root, benchDirs.err = os.MkdirTemp("", "smtpd-bench-") })
	if benchDirs.err != nil {
		b.Fatal(benchDirs.err)
	}
	dir, err := os.MkdirTemp(benchDirs.root, "store-")
	if err != nil {
		b.Fatal(err)
	}
	return dir
}

// benchDirs is the directory under which storeRoot keeps benchmark stores.
var benchDirs struct {
	once sync.Once
	root string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if benchDirs.root != "" {
		os.RemoveAll(benchDirs.root)
	}
	os.Exit(code)
}

// serve starts a server on a loopback listener, stopped at cleanup.
func serve(t testing.TB, opts Options) (*Server, string) {
	t.Helper()
	srv, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
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
			t.Error("Serve did not return after Close")
		}
	})
	return srv, ln.Addr().String()
}

// recordingRelay is a Relay that keeps what it was given, or fails.
type recordingRelay struct {
	mu   sync.Mutex
	fail error
	msgs []relayed
}

type relayed struct {
	from string
	to   []string
	msg  string
}

func (r *recordingRelay) Enqueue(_ context.Context, from string, to []string, msg io.Reader) (string, error) {
	b, err := io.ReadAll(msg)
	if err != nil {
		return "", err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return "", r.fail
	}
	r.msgs = append(r.msgs, relayed{from, append([]string(nil), to...), string(b)})
	return "Q1", nil
}

func (r *recordingRelay) all() []relayed {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]relayed(nil), r.msgs...)
}

// inbox returns the messages in user's INBOX as stored.
func (e *testEnv) inbox(t testing.TB, user string) []string {
	t.Helper()
	u, err := e.store.User(user)
	if err != nil {
		t.Fatalf("store.User(%s): %v", user, err)
	}
	f, err := u.Folder(mailstore.Inbox)
	if err != nil {
		t.Fatalf("Folder: %v", err)
	}
	infos, err := f.Sync()
	if err != nil {
		t.Fatalf("Sync: %v", err)
	}
	var out []string
	for _, mi := range infos {
		r, err := f.Open(mi.UID)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		b, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

// inboxFiles lists the files of user's INBOX on disk (new/ and cur/).
func (e *testEnv) inboxFiles(t testing.TB, user string) []string {
	t.Helper()
	local, domain, _ := strings.Cut(user, "@")
	var files []string
	for _, sub := range []string{"new", "cur"} {
		m, _ := filepath.Glob(filepath.Join(e.root, domain, local, sub, "*"))
		files = append(files, m...)
	}
	return files
}

// ---- TLS ----

var (
	certOnce sync.Once
	testCert tls.Certificate
	certPool *x509.CertPool
	certPEM  []byte
)

func serverTLS(t testing.TB) *tls.Config {
	t.Helper()
	certOnce.Do(func() {
		c := testkit.SelfSigned(t, "mx.test", "localhost")
		testCert, certPool, certPEM = c.TLS, c.Pool, c.PEM
	})
	return &tls.Config{Certificates: []tls.Certificate{testCert}}
}

func clientTLS() *tls.Config {
	return &tls.Config{RootCAs: certPool, ServerName: "mx.test"}
}

// ---- transcripts ----

// step is one exchange: send is written as is (CRLF added unless it ends
// in one; "" sends nothing), then one reply is read per want pattern.
// The special send "<starttls>" performs the TLS handshake instead.
type step struct {
	send string
	want []string
	do   func(c *client) // if set, runs instead of send/want
}

func s(send string, want ...string) step { return step{send: send, want: want} }

type client struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
	last string // the last reply read
}

func dial(t testing.TB, addr string, implicitTLS bool) *client {
	t.Helper()
	var c net.Conn
	var err error
	if implicitTLS {
		c, err = tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, clientTLS())
	} else {
		c, err = net.DialTimeout("tcp", addr, 5*time.Second)
	}
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return &client{t: t, conn: c, r: bufio.NewReader(c)}
}

// reply reads one (possibly multi-line) reply, lines joined by "\n".
func (c *client) reply() (string, error) {
	var lines []string
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			return strings.Join(lines, "\n"), err
		}
		line = strings.TrimRight(line, "\r\n")
		lines = append(lines, line)
		if len(line) < 4 || line[3] != '-' {
			return strings.Join(lines, "\n"), nil
		}
	}
}

func (c *client) run(steps []step) {
	c.t.Helper()
	for i, st := range steps {
		switch {
		case st.do != nil:
			st.do(c)
			continue
		case st.send == "<starttls>":
			tc := tls.Client(c.conn, clientTLS())
			if err := tc.Handshake(); err != nil {
				c.t.Fatalf("step %d: TLS handshake: %v", i, err)
			}
			c.conn, c.r = tc, bufio.NewReader(tc)
		case st.send != "":
			out := st.send
			if !strings.HasSuffix(out, "\r\n") {
				out += "\r\n"
			}
			if _, err := io.WriteString(c.conn, out); err != nil {
				c.t.Fatalf("step %d: write %q: %v", i, st.send, err)
			}
		}
		for _, w := range st.want {
			got, err := c.reply()
			c.last = got
			if !regexp.MustCompile(w).MatchString(got) {
				c.t.Fatalf("step %d: sent %q: reply %q (err %v), want /%s/", i, abbrev(st.send), got, err, w)
			}
		}
	}
}

func abbrev(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// transcript dials addr and runs steps, starting with the greeting.
func transcript(t testing.TB, addr string, implicitTLS bool, steps ...step) *client {
	t.Helper()
	c := dial(t, addr, implicitTLS)
	c.run(append([]step{s("", `^220 `)}, steps...))
	return c
}

// cram runs a CRAM-MD5 exchange (RFC 2195) and expects want.
func cram(user, pass, want string) step {
	return step{do: func(c *client) {
		c.t.Helper()
		c.run([]step{s("AUTH CRAM-MD5", `^334 `)})
		line := c.last
		ch, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(line, "334 "))
		if err != nil {
			c.t.Fatalf("CRAM-MD5 challenge %q: %v", line, err)
		}
		m := hmac.New(md5.New, []byte(pass))
		m.Write(ch)
		c.run([]step{s(b64(user+" "+hex.EncodeToString(m.Sum(nil))), want)})
	}}
}

// lastID returns the "(id X)" or "queued as X" of the last reply.
func (c *client) lastID(t testing.TB) string {
	t.Helper()
	m := regexp.MustCompile(`(?:id |queued as )(\w+)`).FindStringSubmatch(c.last)
	if m == nil {
		t.Fatalf("no ID in reply %q", c.last)
	}
	return m[1]
}

// logBuffer collects a server's log lines written from its goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func plainIR(user, pass string) string { return b64("\x00" + user + "\x00" + pass) }

// msg builds a small message with CRLF line ends.
func msg(from, to, subject, body string) string {
	return "From: " + from + "\r\nTo: " + to + "\r\nSubject: " + subject + "\r\n\r\n" + body + "\r\n.\r\n"
}
