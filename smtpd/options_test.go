package smtpd

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/mailsuite/mailsuite/accounts"
)

func TestNewRejectsBadOptions(t *testing.T) {
	dir, err := accounts.New(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	sink := Hooks{OnMessage: func(*Message) error { return nil }}
	cases := []struct {
		name string
		opts Options
		want string
	}{
		{"TLS mode without config", Options{TLSMode: TLSOptional, Hooks: sink}, "TLSConfig is required"},
		{"unknown TLS mode", Options{TLSMode: 9, Hooks: sink}, "unknown TLSMode"},
		{"unknown role", Options{Role: 7, Hooks: sink}, "unknown Role"},
		{"submission without directory", Options{Role: RoleSubmission, Hooks: sink}, "needs a Directory"},
		{"directory without store", Options{Directory: dir}, "needs a Store"},
		{"nowhere to deliver", Options{}, "Hooks.OnMessage must take the mail"},
		{"banner with CRLF", Options{Banner: "hi\r\n250 fake", Hooks: sink}, "control characters"},
		{"hostname with space", Options{Hostname: "a b", Hooks: sink}, "spaces"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.opts.Logger = slog.New(slog.DiscardHandler)
			if c.opts.Hostname == "" {
				c.opts.Hostname = "mx.test"
			}
			_, err := New(c.opts)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("New: %v, want error containing %q", err, c.want)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	o, err := Options{Hostname: "mx.test", Hooks: Hooks{OnMessage: func(*Message) error { return nil }}, MaxConns: -1}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if o.MaxMessageBytes != DefaultMaxMessageBytes || o.MaxRecipients != DefaultMaxRecipients ||
		o.MaxLineLength != DefaultMaxLineLength || o.MaxConnsPerIP != DefaultMaxConnsPerIP ||
		o.ReadTimeout != DefaultReadTimeout || o.WriteTimeout != DefaultWriteTimeout || o.DataTimeout != DefaultDataTimeout {
		t.Errorf("defaults not applied: %+v", o)
	}
	if o.MaxConns != 0 {
		t.Errorf("MaxConns -1 should become 0 (unlimited), got %d", o.MaxConns)
	}
}

func TestBanner(t *testing.T) {
	ev := &events{}
	opts := standalone(ev, nil)
	opts.Banner = "Office mail"
	_, addr := serve(t, opts)
	c := dial(t, addr, false)
	if got, _ := c.reply(); got != "220 recv.test Office mail ESMTP Service Ready" {
		t.Errorf("greeting %q", got)
	}
}
