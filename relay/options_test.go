package relay

import (
	"testing"
	"time"
)

func TestOptionsDefaults(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Error("New without DataDir accepted")
	}
	if _, err := New(Options{DataDir: t.TempDir(), Smarthost: "no-port"}); err == nil {
		t.Error("smarthost without port accepted")
	}
	sched := []time.Duration{time.Second, time.Minute}
	q, err := New(Options{DataDir: t.TempDir(), DNSServer: "192.0.2.1", RetrySchedule: sched})
	if err != nil {
		t.Fatal(err)
	}
	sched[0] = time.Hour // New copied it
	o := q.opts
	if o.MXPort != 25 || o.Workers != 4 || o.MaxAge != 5*24*time.Hour || o.DNSServer != "192.0.2.1:53" || q.dns != "192.0.2.1:53" {
		t.Errorf("defaults: port %d, workers %d, max age %v, dns %q", o.MXPort, o.Workers, o.MaxAge, o.DNSServer)
	}
	for attempt, want := range map[int]time.Duration{0: time.Second, 1: time.Second, 2: time.Minute, 9: time.Minute} {
		if got := o.retryDelay(attempt); got != want {
			t.Errorf("retryDelay(%d) = %v, want %v", attempt, got, want)
		}
	}
	q2, _ := New(Options{DataDir: t.TempDir()})
	if got := q2.opts.retryDelay(7); got != 4*time.Hour {
		t.Errorf("default schedule after the last step: %v, want 4h", got)
	}
}

func TestPostmaster(t *testing.T) {
	for _, tc := range []struct {
		host    string
		domains []string
		want    string
	}{
		{"mail.example.com", []string{"other.org", "example.com"}, "postmaster@example.com"},
		{"mail.isp.net", []string{"Example.com"}, "postmaster@example.com"},
		{"localhost", nil, "postmaster@localhost"},
	} {
		o := Options{Hostname: tc.host, LocalDomains: tc.domains}
		if got := o.postmaster(); got != tc.want {
			t.Errorf("postmaster(%q, %q) = %q, want %q", tc.host, tc.domains, got, tc.want)
		}
	}
}
