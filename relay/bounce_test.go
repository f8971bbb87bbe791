package relay

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
	"github.com/emersion/go-smtp"
)

var update = flag.Bool("update", false, "rewrite golden files")

// dsnParts is a DSN taken apart with go-message.
type dsnParts struct {
	header     gomessage.Header
	human      string
	perMessage textproto.Header
	perRcpt    []textproto.Header
	original   string
}

func parseDSN(t *testing.T, data []byte) dsnParts {
	t.Helper()
	e, err := gomessage.Read(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("DSN does not parse: %v", err)
	}
	var d dsnParts
	d.header = e.Header
	mt, params, err := e.Header.ContentType()
	if err != nil || mt != "multipart/report" || params["report-type"] != "delivery-status" {
		t.Fatalf("DSN Content-Type %q %v (%v)", mt, params, err)
	}
	mr := e.MultipartReader()
	var types []string
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("DSN part: %v", err)
		}
		pt, _, _ := p.Header.ContentType()
		types = append(types, pt)
		body, _ := io.ReadAll(p.Body)
		switch pt {
		case "text/plain":
			d.human = string(body)
		case "message/delivery-status":
			br := bufio.NewReader(bytes.NewReader(body))
			if d.perMessage, err = textproto.ReadHeader(br); err != nil {
				t.Fatalf("per-message fields: %v", err)
			}
			for {
				h, err := textproto.ReadHeader(br)
				if err != nil || h.Len() == 0 {
					break
				}
				d.perRcpt = append(d.perRcpt, h)
			}
		case "text/rfc822-headers":
			d.original = string(body)
		}
	}
	if strings.Join(types, " ") != "text/plain message/delivery-status text/rfc822-headers" {
		t.Fatalf("DSN parts = %q", types)
	}
	return d
}

func TestPermanentFailureBouncesToLocalSender(t *testing.T) {
	d := startDNS(t)
	s := startSink(t, "127.0.0.1", 0, nil, func(s *sink) {
		s.rcpt = func(to string) error {
			if to == "bob@remote.test" {
				return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
			}
			return nil
		}
	})
	d.add(t, "remote.test. 60 IN MX 10 mx1.remote.test.", "mx1.remote.test. 60 IN A 127.0.0.1")
	local := &localSink{}
	o := testOptions(t.TempDir(), d, s.port())
	o.DeliverLocal = local.deliver
	q := startQueue(t, o)
	id := enqueue(t, q, "alice@local.test", []string{"bob@remote.test", "carol@remote.test"}, testMessage("alice@local.test", "m1@test"))
	waitFor(t, "bounce", func() bool { return len(local.messages()) == 1 })
	b := local.messages()[0]
	if b.From != "" || len(b.To) != 1 || b.To[0] != "alice@local.test" {
		t.Fatalf("bounce envelope %q -> %q, want <> -> alice", b.From, b.To)
	}
	dsn := parseDSN(t, b.Data)
	if f := dsn.header.Get("From"); !strings.Contains(f, "postmaster@local.test") {
		t.Errorf("DSN From = %q", f)
	}
	if got := dsn.perMessage.Get("Reporting-MTA"); got != "dns; mail.local.test" {
		t.Errorf("Reporting-MTA = %q", got)
	}
	if dsn.perMessage.Get("Arrival-Date") == "" {
		t.Error("no Arrival-Date")
	}
	if len(dsn.perRcpt) != 1 {
		t.Fatalf("%d recipients reported, want only bob", len(dsn.perRcpt))
	}
	r := dsn.perRcpt[0]
	for k, want := range map[string]string{
		"Final-Recipient": "rfc822; bob@remote.test",
		"Action":          "failed",
		"Status":          "5.1.1",
		"Remote-MTA":      "dns; mx1.remote.test",
		"Diagnostic-Code": "smtp; 550 5.1.1 no such user",
	} {
		if got := r.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if !strings.Contains(dsn.original, "Message-ID: <m1@test>") || strings.Contains(dsn.original, "Hello there") {
		t.Errorf("rfc822-headers part = %q, want the header only", dsn.original)
	}
	if !strings.Contains(dsn.human, "<bob@remote.test>: 550 5.1.1 no such user") {
		t.Errorf("human part = %q", dsn.human)
	}
	// carol was delivered; the message is retired to failed/.
	waitFor(t, "message in failed/", func() bool {
		_, err := os.Stat(filepath.Join(o.DataDir, "queue", "failed", id+".env"))
		return err == nil
	})
	if c := s.counts(); c["<m1@test> carol@remote.test"] != 1 || len(c) != 1 {
		t.Errorf("sink counts = %v", c)
	}
	if l, _ := q.List(); len(l) != 0 {
		t.Errorf("queue still holds %d messages", len(l))
	}
	if _, err := os.Stat(filepath.Join(o.DataDir, "queue", "failed", id+".msg")); err != nil {
		t.Errorf("message file not in failed/: %v", err)
	}
}

func TestBounceToRemoteSenderIsQueued(t *testing.T) {
	d := startDNS(t)
	s := startSink(t, "127.0.0.1", 0, nil, func(s *sink) {
		s.rcpt = func(to string) error {
			if to == "bob@x.test" {
				return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
			}
			return nil
		}
	})
	d.add(t,
		"x.test. 60 IN MX 10 mx.x.test.", "mx.x.test. 60 IN A 127.0.0.1",
		"remote.test. 60 IN MX 10 mx.remote.test.", "mx.remote.test. 60 IN A 127.0.0.1",
	)
	q := startQueue(t, testOptions(t.TempDir(), d, s.port()))
	enqueue(t, q, "alice@remote.test", []string{"bob@x.test"}, testMessage("alice@remote.test", "m1@test"))
	waitFor(t, "bounce by MX", func() bool { return len(s.messages()) == 1 })
	m := s.messages()[0]
	if m.From != "" || len(m.To) != 1 || m.To[0] != "alice@remote.test" {
		t.Fatalf("bounce sent %q -> %q, want MAIL FROM:<> to alice", m.From, m.To)
	}
	parseDSN(t, m.Data)
}

func TestNoBounceForABounce(t *testing.T) {
	d := startDNS(t)
	s := startSink(t, "127.0.0.1", 0, nil, func(s *sink) {
		s.rcpt = func(string) error { return &smtp.SMTPError{Code: 550, Message: "no"} }
	})
	d.add(t, "remote.test. 60 IN MX 10 mx1.remote.test.", "mx1.remote.test. 60 IN A 127.0.0.1")
	local := &localSink{}
	o := testOptions(t.TempDir(), d, s.port())
	o.DeliverLocal = local.deliver
	q := startQueue(t, o)
	id := enqueue(t, q, "", []string{"bob@remote.test"}, testMessage("postmaster@local.test", "m1@test"))
	waitFor(t, "message in failed/", func() bool {
		_, err := os.Stat(filepath.Join(o.DataDir, "queue", "failed", id+".env"))
		return err == nil
	})
	if l, _ := q.List(); len(l) != 0 {
		t.Errorf("queue holds %d messages (a bounce of a bounce?)", len(l))
	}
	if n := len(local.messages()); n != 0 {
		t.Errorf("%d bounces for a bounce", n)
	}
}

func TestDNSFailures(t *testing.T) {
	d := startDNS(t)
	d.add(t, "null.test. 60 IN MX 0 .") // RFC 7505
	d.setRcode("servfail.test", 2)      // SERVFAIL
	// nx.test: not in the zone, NXDOMAIN.
	local := &localSink{}
	o := testOptions(t.TempDir(), d, 1)
	o.DeliverLocal = local.deliver
	o.RetrySchedule = []time.Duration{time.Hour}
	q := startQueue(t, o)
	id := enqueue(t, q, "alice@local.test", []string{"a@null.test", "b@nx.test", "c@servfail.test"}, testMessage("alice@local.test", "m1@test"))
	waitFor(t, "bounce", func() bool { return len(local.messages()) == 1 })
	dsn := parseDSN(t, local.messages()[0].Data)
	got := map[string]string{}
	for _, r := range dsn.perRcpt {
		got[r.Get("Final-Recipient")] = r.Get("Status")
	}
	want := map[string]string{"rfc822; a@null.test": "5.1.10", "rfc822; b@nx.test": "5.1.2"}
	if len(got) != len(want) || got["rfc822; a@null.test"] != "5.1.10" || got["rfc822; b@nx.test"] != "5.1.2" {
		t.Errorf("reported %v, want %v", got, want)
	}
	waitFor(t, "envelope saved", func() bool { i, err := q.Show(id); return err == nil && i.Bounces == 1 })
	i, _ := q.Show(id)
	if r := i.Recipients[2]; r.State != StatePending || r.Status != "4.4.3" {
		t.Errorf("SERVFAIL recipient = %+v, want pending 4.4.3", r)
	}
}

func TestExpiredMessageBounces(t *testing.T) {
	d := startDNS(t)
	s := startSink(t, "127.0.0.1", 0, nil, func(s *sink) {
		s.rcpt = func(string) error {
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 4, 5}, Message: "busy"}
		}
	})
	d.add(t, "remote.test. 60 IN MX 10 mx1.remote.test.", "mx1.remote.test. 60 IN A 127.0.0.1")
	local := &localSink{}
	o := testOptions(t.TempDir(), d, s.port())
	o.DeliverLocal = local.deliver
	o.MaxAge = time.Millisecond
	q := startQueue(t, o)
	enqueue(t, q, "alice@local.test", []string{"bob@remote.test"}, testMessage("alice@local.test", "m1@test"))
	waitFor(t, "bounce", func() bool { return len(local.messages()) == 1 })
	r := parseDSN(t, local.messages()[0].Data).perRcpt[0]
	if r.Get("Status") != "5.4.7" || r.Get("Action") != "failed" || !strings.Contains(r.Get("Diagnostic-Code"), "451") {
		t.Errorf("expiry reported as %v", r.Map())
	}
}

func TestDelayWarning(t *testing.T) {
	d := startDNS(t)
	s := startSink(t, "127.0.0.1", 0, nil, func(s *sink) {
		s.rcpt = func(string) error {
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 4, 5}, Message: "busy"}
		}
	})
	d.add(t, "remote.test. 60 IN MX 10 mx1.remote.test.", "mx1.remote.test. 60 IN A 127.0.0.1")
	local := &localSink{}
	o := testOptions(t.TempDir(), d, s.port())
	o.DeliverLocal = local.deliver
	o.DelayWarning = time.Millisecond
	o.RetrySchedule = []time.Duration{50 * time.Millisecond}
	q := startQueue(t, o)
	id := enqueue(t, q, "alice@local.test", []string{"bob@remote.test"}, testMessage("alice@local.test", "m1@test"))
	waitFor(t, "warning", func() bool { return len(local.messages()) == 1 })
	waitFor(t, "more attempts", func() bool { i, err := q.Show(id); return err == nil && i.Attempts >= 3 })
	if n := len(local.messages()); n != 1 {
		t.Errorf("%d delay warnings, want exactly 1", n)
	}
	dsn := parseDSN(t, local.messages()[0].Data)
	r := dsn.perRcpt[0]
	if r.Get("Action") != "delayed" || r.Get("Status") != "4.4.5" || r.Get("Will-Retry-Until") == "" {
		t.Errorf("warning fields %v", r.Map())
	}
	if !strings.Contains(dsn.header.Get("Subject"), "Delayed") {
		t.Errorf("warning subject %q", dsn.header.Get("Subject"))
	}
}

func TestDSNGolden(t *testing.T) {
	created := time.Date(2026, 11, 20, 9, 30, 0, 0, time.UTC)
	e := &Envelope{
		ID: "18A2B3C4D5E6F-0a1b2c3d4e5f", From: "alice@local.test", Created: created,
		Attempts: 3, LastAttempt: created.Add(2 * time.Hour),
		Recipients: []Recipient{
			{Addr: "bob@remote.test", State: StateFailed, Status: "5.1.1", RemoteMTA: "mx1.remote.test",
				Diagnostic: "smtp; 550 5.1.1 no such\n user"},
			{Addr: "carol@gone.test", State: StateFailed, Status: "5.1.2", Diagnostic: "x-mailsuite; DNS MX gone.test: no such domain"},
		},
	}
	hdr := []byte("From: Alice <alice@local.test>\r\nTo: bob@remote.test\r\nSubject: lunch?\r\n")
	for _, tc := range []struct{ name, action string }{{"dsn_failed", actionFailed}, {"dsn_delayed", actionDelayed}} {
		t.Run(tc.name, func(t *testing.T) {
			got := buildDSN(dsnInput{
				ID: e.ID + ".b1", Hostname: "mail.local.test", Postmaster: "postmaster@local.test",
				Env: e, Recipients: e.Recipients, Action: tc.action,
				RetryUntil: created.Add(5 * 24 * time.Hour), Now: created.Add(2*time.Hour + time.Second), Header: hdr,
			})
			path := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("DSN differs from %s:\n%s", path, got)
			}
			parseDSN(t, got) // and it is well-formed
		})
	}
}

func TestPermanentLocalFailureOfABounce(t *testing.T) {
	d := startDNS(t)
	s := startSink(t, "127.0.0.1", 0, nil, func(s *sink) {
		s.rcpt = func(string) error { return &smtp.SMTPError{Code: 550, Message: "no"} }
	})
	d.add(t, "remote.test. 60 IN MX 10 mx1.remote.test.", "mx1.remote.test. 60 IN A 127.0.0.1")
	var calls atomic.Int32
	o := testOptions(t.TempDir(), d, s.port())
	o.DeliverLocal = func(context.Context, string, []string, []byte) error {
		calls.Add(1)
		return Permanent(errors.New("no such user"))
	}
	q := startQueue(t, o)
	id := enqueue(t, q, "gone@local.test", []string{"bob@remote.test"}, testMessage("gone@local.test", "m1@test"))
	failed := filepath.Join(o.DataDir, "queue", "failed")
	waitFor(t, "message and its bounce in failed/", func() bool {
		_, err1 := os.Stat(filepath.Join(failed, id+".env"))
		_, err2 := os.Stat(filepath.Join(failed, id+".b1.env"))
		return err1 == nil && err2 == nil
	})
	if n := calls.Load(); n != 1 {
		t.Errorf("DeliverLocal called %d times, want 1 (a permanent error is not retried)", n)
	}
	if l, _ := q.List(); len(l) != 0 {
		t.Errorf("queue holds %d messages", len(l))
	}
}

func TestRecoversHalfMovedMessage(t *testing.T) {
	d := startDNS(t)
	o := testOptions(t.TempDir(), d, 1)
	q, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	id := enqueue(t, q, "alice@local.test", []string{"bob@remote.test"}, testMessage("alice@local.test", "m1@test"))
	// As if moveToFailed died after moving the message file, and the
	// lock file had been lost too.
	qdir := filepath.Join(o.DataDir, "queue")
	if err := os.Rename(filepath.Join(qdir, id+".msg"), filepath.Join(qdir, "failed", id+".msg")); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(qdir, id+".lock"))
	if err := q.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	waitFor(t, "envelope moved to failed/, nothing left behind", func() bool {
		_, err := os.Stat(filepath.Join(qdir, "failed", id+".env"))
		entries, _ := os.ReadDir(qdir)
		return err == nil && len(entries) == 1
	})
}
