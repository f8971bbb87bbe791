package mailsuite

import (
	"bufio"
	"fmt"
	"os"
	"sync"
	"time"
)

// transcript appends protocol lines to a file: "time listener session > line"
// for commands and "<" for replies. The servers redact credentials before
// the hooks see them.
type transcript struct {
	mu sync.Mutex
	f  *os.File
	w  *bufio.Writer
}

func openTranscript(path string) (*transcript, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("log transcript: %w", err)
	}
	return &transcript{f: f, w: bufio.NewWriter(f)}, nil
}

func (t *transcript) hooks(listener string) (onCommand, onReply func(session, line string)) {
	return func(session, line string) { t.write(listener, session, ">", line) },
		func(session, line string) { t.write(listener, session, "<", line) }
}

func (t *transcript) write(listener, session, dir, line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Fprintf(t.w, "%s %s %s %s %s\n", time.Now().UTC().Format("2006-01-02T15:04:05.000Z"), listener, session, dir, line)
	// Flush per line: a transcript that stops before a crash is what it is for.
	t.w.Flush()
}

// Close is safe on a nil transcript.
func (t *transcript) Close() error {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.w.Flush()
	return t.f.Close()
}
