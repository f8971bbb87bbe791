package relay

import (
	"context"
	"strings"
	"testing"
)

// BenchmarkEnqueue is bound by the two fsyncs per message (file and
// directory for each of message and envelope).
func BenchmarkEnqueue(b *testing.B) {
	q, err := New(Options{DataDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	msg := testMessage("alice@local.test", "m@test") + strings.Repeat("x", 4000) + "\r\n"
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if _, err := q.Enqueue(context.Background(), "alice@local.test", []string{"bob@remote.test"}, strings.NewReader(msg)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseEnvelope(b *testing.B) {
	data := sampleEnvelope().Marshal()
	for b.Loop() {
		if _, err := ParseEnvelope(data); err != nil {
			b.Fatal(err)
		}
	}
}
