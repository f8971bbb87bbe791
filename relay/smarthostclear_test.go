package relay

import "testing"

// The smarthost password never crosses the network in clear: with
// SmarthostTLS none, AUTH is allowed only to a loopback smarthost.
func TestSmarthostPasswordNeverInClear(t *testing.T) {
	for _, tc := range []struct {
		host, user string
		ok         bool
	}{
		{"smtp.isp.test:587", "office", false},
		{"192.0.2.7:25", "office", false},
		{"[2001:db8::1]:25", "office", false},
		{"smtp.isp.test:25", "", true}, // no password to leak
		{"127.0.0.1:2525", "office", true},
		{"[::1]:2525", "office", true},
		{"localhost:2525", "office", true},
	} {
		_, err := New(Options{DataDir: t.TempDir(), Smarthost: tc.host, SmarthostTLS: TLSNone,
			SmarthostUser: tc.user, SmarthostPassword: "pw"})
		if (err == nil) != tc.ok {
			t.Errorf("smarthost %s, user %q, TLS none: New error %v, want ok=%v", tc.host, tc.user, err, tc.ok)
		}
	}
}
