package pop3d

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
)

func sendMessage(t testing.TB, msg string, bodyLines int, bufSize int) (string, bool) {
	t.Helper()
	var out bytes.Buffer
	w := bufio.NewWriter(&out)
	mw := newMsgWriter()
	if bufSize > 0 {
		mw.br = bufio.NewReaderSize(nil, bufSize)
	}
	complete, err := mw.write(w, strings.NewReader(msg), bodyLines)
	if err != nil {
		t.Fatal(err)
	}
	w.Flush()
	return out.String(), complete
}

func TestMsgWriter(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		lines int
		want  string
	}{
		{"crlf", "A: b\r\n\r\nbody\r\n", -1, "A: b\r\n\r\nbody\r\n.\r\n"},
		{"bare lf", "A: b\n\nbody\n", -1, "A: b\r\n\r\nbody\r\n.\r\n"},
		{"no final newline", "A: b\n\nlast", -1, "A: b\r\n\r\nlast\r\n.\r\n"},
		{"dot stuffing", "A: b\n\n.\n..x\n.end", -1, "A: b\r\n\r\n..\r\n...x\r\n..end\r\n.\r\n"},
		{"dot not at line start", "A: b\n\na.b\n", -1, "A: b\r\n\r\na.b\r\n.\r\n"},
		{"bare cr kept", "A: b\r\n\r\nx\ry\r\n", -1, "A: b\r\n\r\nx\ry\r\n.\r\n"},
		{"empty", "", -1, ".\r\n"},
		{"top 0", "A: b\nC: d\n\none\ntwo\n", 0, "A: b\r\nC: d\r\n\r\n.\r\n"},
		{"top 1", "A: b\n\none\ntwo\n", 1, "A: b\r\n\r\none\r\n.\r\n"},
		{"top more than body", "A: b\n\none\n", 5, "A: b\r\n\r\none\r\n.\r\n"},
		{"top header only", "A: b\nC: d", 3, "A: b\r\nC: d\r\n.\r\n"},
		{"top dot line", "A: b\n\n.x\ny\n", 1, "A: b\r\n\r\n..x\r\n.\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, size := range []int{0, 16, 17, 18} { // small buffers split lines and CRLFs
				got, _ := sendMessage(t, tt.in, tt.lines, size)
				if got != tt.want {
					t.Errorf("buf %d: got %q, want %q", size, got, tt.want)
				}
			}
		})
	}
}

// TestMsgWriterLongLines checks lines longer than the buffer, with a CRLF
// split across two reads.
func TestMsgWriterLongLines(t *testing.T) {
	long := strings.Repeat("x", 40)
	for split := 14; split <= 20; split++ {
		in := "A: b\r\n\r\n" + long + "\r\n.\r\n" + long + "\n"
		want := "A: b\r\n\r\n" + long + "\r\n..\r\n" + long + "\r\n.\r\n"
		got, complete := sendMessage(t, in, -1, split)
		if got != want || !complete {
			t.Errorf("buf %d: got %q (complete %v), want %q", split, got, complete, want)
		}
	}
}

// unstuff undoes dot-stuffing as a client does (RFC 1939 §3) and checks
// the termination, returning the message.
func unstuff(t testing.TB, wire string) string {
	t.Helper()
	if !strings.HasSuffix(wire, "\r\n.\r\n") && wire != ".\r\n" {
		t.Fatalf("not terminated: %q", wire)
	}
	body := strings.TrimSuffix(wire, ".\r\n")
	var b strings.Builder
	for _, l := range strings.SplitAfter(body, "\r\n") {
		b.WriteString(strings.TrimPrefix(l, "."))
	}
	return b.String()
}

func FuzzMsgWriter(f *testing.F) {
	f.Add("A: b\n\n.body\r\nx", -1)
	f.Add("\r\r\n\n..\n", 2)
	f.Fuzz(func(t *testing.T, in string, lines int) {
		got, _ := sendMessage(t, in, lines, 16)
		msg := unstuff(t, got)
		// Every line ends in CRLF and no bare LF survives.
		if strings.Count(msg, "\n") != strings.Count(msg, "\r\n") {
			t.Fatalf("bare LF in %q", msg)
		}
		if lines < 0 {
			norm := strings.ReplaceAll(strings.ReplaceAll(in, "\r\n", "\n"), "\n", "\r\n")
			if norm != "" && !strings.HasSuffix(norm, "\r\n") {
				norm += "\r\n"
			}
			// A CR before a CRLF split by us is the one case the simple
			// normalisation above differs from ours.
			if !strings.Contains(in, "\r\r\n") && msg != norm {
				t.Fatalf("got %q, want %q", msg, norm)
			}
		}
	})
}
