package integration

import (
	"io"
	"log"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// smtpSink is the "rest of the internet" on loopback: an SMTP server that
// the relay uses as its smarthost. It counts each message by Message-ID
// and notes any that arrive damaged. It refuses recipients whose local
// part starts with "reject-".
type smtpSink struct {
	addr    string
	mu      sync.Mutex
	got     map[string]int
	damaged []string
}

func startSink(t testing.TB) *smtpSink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	k := &smtpSink{addr: ln.Addr().String(), got: map[string]int{}}
	srv := smtp.NewServer(k)
	srv.Domain = "sink.example.org"
	srv.ReadTimeout = 20 * time.Second
	srv.WriteTimeout = 20 * time.Second
	srv.MaxMessageBytes = 10 << 20
	srv.ErrorLog = log.New(io.Discard, "", 0) // resets from killed servers are expected
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return k
}

func (k *smtpSink) NewSession(*smtp.Conn) (smtp.Session, error) { return &sinkSession{k: k}, nil }

func (k *smtpSink) count(id string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.got[id]
}

type sinkSession struct{ k *smtpSink }

func (s *sinkSession) Mail(string, *smtp.MailOptions) error { return nil }

// Rcpt refuses local parts starting with "reject-" (a remote 550).
func (s *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if strings.HasPrefix(to, "reject-") {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user"}
	}
	return nil
}

func (s *sinkSession) Reset()        {}
func (s *sinkSession) Logout() error { return nil }

func (s *sinkSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	id, err := checkMessage(data)
	s.k.mu.Lock()
	defer s.k.mu.Unlock()
	if err != nil {
		s.k.damaged = append(s.k.damaged, err.Error())
		return nil
	}
	s.k.got[id]++
	return nil
}
