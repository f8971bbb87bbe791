package relay

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
)

// message is a queued message file as sent: DKIM-signed once per attempt,
// then streamed from disk for each SMTP transaction.
type message struct {
	q        *Queue
	path     string
	prefix   []byte
	prepared bool
}

// prepare signs the message once per attempt.
func (m *message) prepare() {
	if m.prepared {
		return
	}
	sig, err := m.q.dkimHeader(m.path)
	if err != nil {
		m.q.log.Error("DKIM signing failed, sending unsigned", "file", m.path, "err", err)
	}
	m.prefix, m.prepared = sig, true
}

func (m *message) open() (io.ReadCloser, error) {
	m.prepare()
	f, err := os.Open(m.path)
	if err != nil {
		return nil, fmt.Errorf("relay: open queued message: %w", err)
	}
	return struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(m.prefix), f), f}, nil
}

// size is what will be sent, for SIZE=; 0 (unknown) if the file is gone.
func (m *message) size() int64 {
	m.prepare()
	fi, err := os.Stat(m.path)
	if err != nil {
		return 0
	}
	return fi.Size() + int64(len(m.prefix))
}

const maxHeaderSize = 256 << 10

// readHeader returns a message file's header section, without the blank
// line that ends it (at most maxHeaderSize bytes).
func readHeader(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("relay: open queued message: %w", err)
	}
	defer f.Close()
	br := bufio.NewReader(io.LimitReader(f, maxHeaderSize))
	var hdr []byte
	for {
		line, err := br.ReadBytes('\n')
		if len(bytes.TrimRight(line, "\r\n")) == 0 && (len(line) > 0 || err != nil) {
			if err != nil && !errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("relay: read queued message: %w", err)
			}
			return hdr, nil
		}
		hdr = append(hdr, line...)
		if err != nil {
			if errors.Is(err, io.EOF) {
				if len(hdr) > 0 && hdr[len(hdr)-1] != '\n' {
					hdr = append(hdr, "\r\n"...)
				}
				return hdr, nil
			}
			return nil, fmt.Errorf("relay: read queued message: %w", err)
		}
	}
}
