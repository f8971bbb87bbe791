package relay

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func sampleEnvelope() *Envelope {
	t0 := time.Date(2026, 11, 22, 16, 0, 0, 123456789, time.UTC)
	return &Envelope{
		ID: "18A2B3C4D5E6F-0a1b2c3d4e5f", From: "alice@local.test", Created: t0,
		Attempts: 2, Next: t0.Add(15 * time.Minute), LastAttempt: t0.Add(5 * time.Minute),
		Warned: true, Bounces: 1,
		Recipients: []Recipient{
			{Addr: "bob@remote.test", State: StateDelivered, Status: "2.0.0", TLS: TLSUsedVerified,
				Updated: t0.Add(time.Minute), RemoteMTA: "mx1.remote.test", Diagnostic: "smtp; 250 2.0.0 queued as \"X\""},
			{Addr: "carol@remote.test", State: StateFailed, Notified: true, Status: "5.1.1", TLS: TLSUsedUnverified,
				Updated: t0.Add(time.Minute), RemoteMTA: "mx1.remote.test", Diagnostic: "smtp; 550 5.1.1 no such user"},
			{Addr: "dörte@例え.jp", State: StatePending},
			{Addr: `"john doe"@remote.test`, State: StatePending},
		},
	}
}

func TestEnvelopeRoundTrip(t *testing.T) {
	e := sampleEnvelope()
	data := e.Marshal()
	got, err := ParseEnvelope(data)
	if err != nil {
		t.Fatalf("parse of own output: %v\n%s", err, data)
	}
	if !bytes.Equal(got.Marshal(), data) {
		t.Errorf("round trip changed the envelope:\n%s\nvs\n%s", got.Marshal(), data)
	}
	if got.Recipients[2].Addr != "dörte@例え.jp" || !got.Next.Equal(e.Next) || got.Recipients[1].Status != "5.1.1" {
		t.Errorf("fields lost: %+v", got)
	}
	if p := got.Pending(); len(p) != 2 || p[0] != "dörte@例え.jp" {
		t.Errorf("Pending() = %q", p)
	}
}

func TestParseEnvelopeRejects(t *testing.T) {
	good := string(sampleEnvelope().Marshal())
	for name, mutate := range map[string]func(string) string{
		"empty":         func(string) string { return "" },
		"other version": func(s string) string { return strings.Replace(s, "envelope 1", "envelope 2", 1) },
		"truncated":     func(s string) string { return s[:len(s)-5] },
		"no end":        func(s string) string { return strings.TrimSuffix(s, "end\n") },
		"after end":     func(s string) string { return s + "x\n" },
		"unknown key":   func(s string) string { return strings.Replace(s, "warned 1", "colour blue", 1) },
		"swapped keys":  func(s string) string { return strings.Replace(s, "attempts 2\nnext", "next", 1) },
		"bad id":        func(s string) string { return strings.Replace(s, "id 18A", "id ../18A", 1) },
		"unquoted from": func(s string) string {
			return strings.Replace(s, `from "alice@local.test"`, "from alice@local.test", 1)
		},
		"newline in addr":   func(s string) string { return strings.Replace(s, `"bob@remote.test"`, `"bob@remote.test\r\nRSET"`, 1) },
		"bad state":         func(s string) string { return strings.Replace(s, "rcpt pending", "rcpt maybe", 1) },
		"bad status":        func(s string) string { return strings.Replace(s, " 5.1.1 ", " 6.1.1 ", 1) },
		"negative attempts": func(s string) string { return strings.Replace(s, "attempts 2", "attempts -2", 1) },
		"bad time":          func(s string) string { return strings.Replace(s, "created 2026", "created 20x6", 1) },
		"no recipients": func(s string) string {
			var keep []string
			for _, l := range strings.Split(s, "\n") {
				if !strings.HasPrefix(l, "rcpt ") {
					keep = append(keep, l)
				}
			}
			return strings.Join(keep, "\n")
		},
		"duplicate rcpt": func(s string) string {
			i := strings.Index(s, "rcpt ")
			j := strings.Index(s[i:], "\n") + i + 1
			return s[:j] + s[i:j] + s[j:]
		},
		"trailing field": func(s string) string { return strings.Replace(s, `no such user"`, `no such user" x`, 1) },
		"address no at":  func(s string) string { return strings.Replace(s, `"bob@remote.test"`, `"bob"`, 1) },
		"unquoted space": func(s string) string { return strings.Replace(s, `"bob@remote.test"`, `"bob smith@remote.test"`, 1) },
	} {
		bad := mutate(good)
		if bad == good {
			t.Fatalf("%s: mutation did nothing", name)
		}
		if _, err := ParseEnvelope([]byte(bad)); err == nil {
			t.Errorf("%s: accepted:\n%s", name, bad)
		}
	}
}

func FuzzParseEnvelope(f *testing.F) {
	f.Add(sampleEnvelope().Marshal())
	e := sampleEnvelope()
	e.From, e.Recipients = "", e.Recipients[:1]
	f.Add(e.Marshal())
	f.Add([]byte(envelopeMagic + "\nid x\nend\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := ParseEnvelope(data)
		if err != nil {
			return
		}
		// Whatever parses must survive a round trip unchanged.
		out := e.Marshal()
		e2, err := ParseEnvelope(out)
		if err != nil {
			t.Fatalf("own output does not parse: %v\n%s", err, out)
		}
		if !bytes.Equal(e2.Marshal(), out) {
			t.Fatalf("round trip differs")
		}
		for _, r := range e.Recipients {
			if checkAddr(r.Addr) != nil {
				t.Fatalf("unsafe address %q accepted", r.Addr)
			}
		}
	})
}
