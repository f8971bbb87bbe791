package relay

import (
	"log/slog"
	"strings"
	"testing"
)

// example.com's key must be found beside example.com.au's: a file name
// glob "example.com.*.key" matches both, and the sibling's must not hide
// (or replace) the domain's own key.
func TestDKIMKeyOfSiblingDomainIgnored(t *testing.T) {
	dir := t.TempDir()
	for _, k := range [][2]string{{"local.test", "a2026"}, {"local.test.au", "b2026"}, {"local.test.au", "z"}} {
		if _, err := GenerateKeyType(dir, k[0], k[1], KeyEd25519); err != nil {
			t.Fatal(err)
		}
	}
	q, err := New(Options{DataDir: dir, LocalDomains: []string{"local.test", "local.test.au"},
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ from, domain, selector string }{
		{"alice@local.test", "d=local.test;", "s=a2026;"},
		{"bruce@local.test.au", "d=local.test.au;", "s=z;"},
	} {
		id := enqueue(t, q, tc.from, []string{"bob@remote.test"}, testMessage(tc.from, "m@test"))
		sig, err := q.dkimHeader(q.spool.path(id, ".msg"))
		if err != nil {
			t.Fatalf("%s: %v", tc.from, err)
		}
		if flat := strings.Join(strings.Fields(string(sig)), " "); !strings.Contains(flat, tc.domain) || !strings.Contains(flat, tc.selector) {
			t.Errorf("%s: signature %q, want %s and %s", tc.from, flat, tc.domain, tc.selector)
		}
	}
}
