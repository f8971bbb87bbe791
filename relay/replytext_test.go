package relay

import (
	"log/slog"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-smtp"
)

// A remote's reply text is foreign input: Latin-1 bytes, escape sequences
// or an out-of-range enhanced code must not make the saved envelope
// unreadable, or the message would sit in the queue forever, neither
// delivered nor bounced.
func TestOddReplyKeepsEnvelopeReadable(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  *smtp.SMTPError
	}{
		{"latin-1 text", &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "Postfach von M\xfcller voll"}},
		{"control characters", &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "busy \x1b[2J\x00\x7f now"}},
		{"replacement character", &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "busy \ufffd"}},
		{"negative enhanced code", &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, -1, 0}, Message: "busy"}},
		{"long enhanced code", &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 1000, 1}, Message: "busy"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := startDNS(t)
			var tries atomic.Int32
			s := startSink(t, "127.0.0.1", 0, nil, func(s *sink) {
				s.rcpt = func(string) error {
					if tries.Add(1) == 1 {
						return tc.err
					}
					return nil
				}
			})
			d.add(t, "remote.test. 60 IN MX 10 mx1.remote.test.", "mx1.remote.test. 60 IN A 127.0.0.1")
			q := startQueue(t, testOptions(t.TempDir(), d, s.port()))
			id := enqueue(t, q, "alice@local.test", []string{"bob@remote.test"}, testMessage("alice@local.test", "m1@test"))
			waitFor(t, "first attempt recorded", func() bool { return tries.Load() >= 1 })
			waitFor(t, "delivery on retry", func() bool { return len(s.messages()) == 1 })
			waitFor(t, "empty queue", func() bool { l, _ := q.List(); return len(l) == 0 })
			if _, err := q.Show(id); err != ErrNotFound {
				t.Errorf("Show after delivery: %v, want ErrNotFound", err)
			}
		})
	}
}

func TestRecordCleansForeignText(t *testing.T) {
	de := replyError(&smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, -7, 1234}, Message: "no\x1b[31m such \xff user\r\n"}, "mx.test")
	if de.status != "5.0.0" {
		t.Errorf("status %q, want 5.0.0 for an invalid enhanced code", de.status)
	}
	if hasCtl(de.diag) || !utf8.ValidString(de.diag) {
		t.Errorf("diagnostic %q keeps control characters or invalid UTF-8", de.diag)
	}
}

// Whatever a remote answers, the outcome recorded from it must survive the
// envelope file: Marshal's output always parses.
func FuzzReplyOutcomeParses(f *testing.F) {
	f.Add(550, 5, 1, 1, "no such user")
	f.Add(451, 4, -1, 0, "Postfach von M\xfcller voll")
	f.Add(250, 2, 1000, 5, "ok \x1b[2J\x00\ufffd")
	q, err := New(Options{DataDir: f.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, code, c1, c2, c3 int, text string) {
		de := replyError(&smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode{c1, c2, c3}, Message: text}, "mx.remote.test")
		e := &Envelope{ID: "F1", From: "alice@local.test", Created: time.Unix(1, 0), Next: time.Unix(1, 0), Recipients: []Recipient{{Addr: "bob@remote.test", State: StatePending}}}
		if err := q.record(t.Context(), e, map[string]outcome{"bob@remote.test": errOutcome(de)}); err != nil {
			t.Fatal(err)
		}
		if _, err := ParseEnvelope(e.Marshal()); err != nil {
			t.Fatalf("recorded outcome does not parse: %v\n%s", err, e.Marshal())
		}
	})
}
