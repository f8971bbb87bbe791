package smtpd

import (
	"crypto/tls"
	"flag"
	"net"
	"os"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestReceivedGolden(t *testing.T) {
	date := time.Date(2026, 11, 22, 17, 4, 5, 0, time.FixedZone("CET", 3600))
	tests := []struct {
		name string
		in   traceInfo
	}{
		{"received-submission", traceInfo{
			Helo: "laptop.example.com", RDNS: "unknown", IP: net.ParseIP("192.0.2.7"),
			Hostname: "mail.example.com", ID: "ABCDEFGHIJKL",
			TLS:  &tls.ConnectionState{Version: tls.VersionTLS13, CipherSuite: tls.TLS_AES_128_GCM_SHA256},
			User: "alice@example.com", Rcpts: []string{"bob@example.org"}, Date: date,
		}},
		{"received-multi", traceInfo{
			Helo: "mx.other.test", RDNS: "mx.other.test", IP: net.ParseIP("2001:db8::25"),
			Hostname: "mail.example.com", ID: "MNOPQRSTUVWX",
			TLS:   &tls.ConnectionState{Version: tls.VersionTLS12, CipherSuite: tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256},
			Rcpts: []string{"a@example.com", "b@example.com"}, Date: date,
		}},
		{"received-hostile-helo", traceInfo{
			Helo: "evil)\r\nX-Injected: yes", RDNS: "", IP: net.ParseIP("198.51.100.1"),
			Hostname: "mail.example.com", ID: "ID", Rcpts: []string{"a@example.com"}, Date: date,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := received(tt.in)
			path := "testdata/" + tt.name + ".golden"
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("got:\n%s\nwant (%s):\n%s", got, path, want)
			}
		})
	}
}
