package relay

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"log/slog"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailsuite/mailsuite/internal/testkit"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/miekg/dns"
)

// ---- an in-process DNS server on loopback ----

type testDNS struct {
	addr  string
	mu    sync.Mutex
	rrs   map[string][]dns.RR // by lower-case FQDN
	rcode map[string]int
}

func startDNS(t *testing.T) *testDNS {
	t.Helper()
	d := &testDNS{rrs: map[string][]dns.RR{}, rcode: map[string]int{}}
	var pc net.PacketConn
	var ln net.Listener
	for i := 0; i < 20 && ln == nil; i++ {
		var err error
		pc, err = net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln, err = net.Listen("tcp", pc.LocalAddr().String())
		if err != nil {
			pc.Close()
			ln = nil
		}
	}
	if ln == nil {
		t.Fatal("no UDP+TCP port pair for DNS")
	}
	d.addr = pc.LocalAddr().String()
	udp := &dns.Server{PacketConn: pc, Handler: d}
	tcp := &dns.Server{Listener: ln, Handler: d}
	go udp.ActivateAndServe()
	go tcp.ActivateAndServe()
	t.Cleanup(func() { udp.Shutdown(); tcp.Shutdown() })
	return d
}

// add adds records in zone-file syntax, e.g. "x.test. 60 IN MX 10 mx.x.test.".
func (d *testDNS) add(t *testing.T, records ...string) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, s := range records {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatalf("bad test record %q: %v", s, err)
		}
		name := strings.ToLower(rr.Header().Name)
		d.rrs[name] = append(d.rrs[name], rr)
	}
}

func (d *testDNS) setRcode(name string, rcode int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.rcode[strings.ToLower(dns.Fqdn(name))] = rcode
}

func (d *testDNS) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	if len(r.Question) == 1 {
		q := r.Question[0]
		name := strings.ToLower(q.Name)
		d.mu.Lock()
		if rc, ok := d.rcode[name]; ok {
			m.Rcode = rc
		} else if rrs, ok := d.rrs[name]; !ok {
			m.Rcode = dns.RcodeNameError
		} else {
			for _, rr := range rrs {
				if rr.Header().Rrtype == q.Qtype {
					m.Answer = append(m.Answer, dns.Copy(rr))
				}
			}
		}
		d.mu.Unlock()
	}
	w.WriteMsg(m)
}

// lookupTXT asks the test DNS (for the DKIM verifier).
func (d *testDNS) lookupTXT(name string) ([]string, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeTXT)
	r, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(m, d.addr)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, rr := range r.Answer {
		if txt, ok := rr.(*dns.TXT); ok {
			out = append(out, strings.Join(txt.Txt, ""))
		}
	}
	return out, nil
}

// ---- receiving SMTP servers on loopback ----

type sinkMsg struct {
	From string
	To   []string
	Data []byte
	TLS  bool
	User string // authenticated user
}

type sink struct {
	addr string
	srv  *smtp.Server

	// Behaviour, set before use.
	rcpt  func(to string) error // nil: accept
	data  func(n int) error     // n counts DATA commands from 1; nil: accept
	users map[string]string     // AUTH PLAIN required if set
	gate  chan struct{}         // if set, DATA beyond gateAfter blocks on it
	after int                   // gateAfter
	// implicit serves TLS from the first byte (with the tls.Config given).
	implicit bool

	mu      sync.Mutex
	msgs    []sinkMsg
	datas   int
	blocked int
}

// startSink listens on ip:port (port 0: any) and serves SMTP.
func startSink(t *testing.T, ip string, port int, tlsCfg *tls.Config, setup func(*sink)) *sink {
	t.Helper()
	s := &sink{}
	if setup != nil {
		setup(s)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("sink listen: %v", err)
	}
	s.addr = ln.Addr().String()
	if s.implicit {
		ln = tls.NewListener(ln, tlsCfg)
		tlsCfg = nil
	}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &sinkSession{s: s, c: c}, nil
	}))
	s.srv.Domain = "sink.test"
	s.srv.TLSConfig = tlsCfg
	s.srv.ErrorLog = log.New(io.Discard, "", 0)
	s.srv.EnableSMTPUTF8 = true
	go s.srv.Serve(ln)
	t.Cleanup(func() {
		s.mu.Lock()
		if s.gate != nil {
			select {
			case <-s.gate:
			default:
				close(s.gate)
			}
		}
		s.mu.Unlock()
		s.srv.Close()
	})
	return s
}

func (s *sink) port() int {
	_, p, _ := net.SplitHostPort(s.addr)
	n, _ := strconv.Atoi(p)
	return n
}

func (s *sink) messages() []sinkMsg {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sinkMsg(nil), s.msgs...)
}

// counts is how often each (Message-ID, recipient) pair arrived.
func (s *sink) counts() map[string]int {
	out := map[string]int{}
	for _, m := range s.messages() {
		id := headerOf(m.Data, "Message-ID")
		for _, to := range m.To {
			out[id+" "+to]++
		}
	}
	return out
}

type sinkSession struct {
	s    *sink
	c    *smtp.Conn
	from string
	to   []string
	user string
}

func (ss *sinkSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (ss *sinkSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if want, ok := ss.s.users[user]; ok && want == pass {
			ss.user = user
			return nil
		}
		return smtp.ErrAuthFailed
	}), nil
}

func (ss *sinkSession) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.users != nil && ss.user == "" {
		return smtp.ErrAuthRequired
	}
	ss.from = from
	return nil
}

func (ss *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if ss.s.rcpt != nil {
		if err := ss.s.rcpt(to); err != nil {
			return err
		}
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *sinkSession) Data(r io.Reader) error {
	body, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s := ss.s
	s.mu.Lock()
	s.datas++
	n := s.datas
	gate := s.gate
	if gate != nil && len(s.msgs) >= s.after {
		s.blocked++
		s.mu.Unlock()
		<-gate
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "gate"}
	}
	s.mu.Unlock()
	if s.data != nil {
		if err := s.data(n); err != nil {
			return err
		}
	}
	_, isTLS := ss.c.TLSConnectionState()
	_, implicit := ss.c.Conn().(*tls.Conn)
	isTLS = isTLS || implicit
	s.mu.Lock()
	s.msgs = append(s.msgs, sinkMsg{From: ss.from, To: append([]string(nil), ss.to...), Data: body, TLS: isTLS, User: ss.user})
	s.mu.Unlock()
	return nil
}

func (ss *sinkSession) Reset()        { ss.from, ss.to = "", nil }
func (ss *sinkSession) Logout() error { return nil }

// ---- certificates ----

// selfSigned makes a server certificate for names (and 127.0.0.1) and the
// pool that trusts it.
func selfSigned(t *testing.T, names ...string) (*tls.Config, *x509.CertPool) {
	t.Helper()
	c := testkit.SelfSigned(t, names...)
	return c.ServerConfig(), c.Pool
}

// ---- the queue under test ----

// logBuf collects the queue's log for assertions on what it recorded.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func testOptions(dir string, d *testDNS, port int) Options {
	return Options{
		DataDir:        dir,
		Hostname:       "mail.local.test",
		LocalDomains:   []string{"local.test"},
		DNSServer:      d.addr,
		DNSTimeout:     2 * time.Second,
		MXPort:         port,
		RetrySchedule:  []time.Duration{150 * time.Millisecond},
		ScanInterval:   time.Second,
		WakePoll:       50 * time.Millisecond,
		ConnectTimeout: 2 * time.Second,
		CommandTimeout: 5 * time.Second,
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

func startQueue(t *testing.T, o Options) *Queue {
	t.Helper()
	q, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func enqueue(t *testing.T, q *Queue, from string, to []string, msg string) string {
	t.Helper()
	id, err := q.Enqueue(context.Background(), from, to, strings.NewReader(msg))
	if err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	return id
}

func testMessage(from, msgID string) string {
	return "From: <" + from + ">\r\nTo: <bob@remote.test>\r\nSubject: hello " + msgID +
		"\r\nDate: Sun, 22 Nov 2026 16:00:00 +0000\r\nMessage-ID: <" + msgID + ">\r\n\r\nHello there.\r\nSecond line.\r\n"
}

func headerOf(data []byte, key string) string {
	tp := textproto.NewReader(bufioReader(data))
	h, err := tp.ReadMIMEHeader()
	if err != nil && !errors.Is(err, io.EOF) {
		return ""
	}
	return h.Get(key)
}

// localSink records what DeliverLocal was given.
type localSink struct {
	mu   sync.Mutex
	msgs []sinkMsg
}

func (l *localSink) deliver(_ context.Context, from string, to []string, msg []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, sinkMsg{From: from, To: to, Data: msg})
	return nil
}

func (l *localSink) messages() []sinkMsg {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]sinkMsg(nil), l.msgs...)
}

func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }
