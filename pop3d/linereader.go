package pop3d

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// errLineTooLong is returned for a line longer than the reader's limit; the
// rest of the line has been consumed, so the session can answer and go on.
var errLineTooLong = errors.New("pop3d: line too long")

// lineReader reads CRLF- (or bare LF-) terminated lines with a length limit,
// which textproto.Reader does not have. A limit bounds the memory a client
// can make us hold.
type lineReader struct {
	br *bufio.Reader
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, 4096)}
}

// readLine returns the next line without its line ending. max counts the
// line including CRLF. A too-long line is skipped and errLineTooLong
// returned; draining it is bounded by the connection's read deadline.
func (lr *lineReader) readLine(max int) (string, error) {
	var buf []byte
	tooLong := false
	for {
		frag, err := lr.br.ReadSlice('\n')
		if !tooLong {
			if len(buf)+len(frag) > max {
				tooLong = true
				buf = nil
			} else {
				buf = append(buf, frag...)
			}
		}
		switch {
		case err == nil:
			if tooLong {
				return "", errLineTooLong
			}
			buf = bytes.TrimSuffix(buf[:len(buf)-1], []byte("\r"))
			return string(buf), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return "", err
		}
	}
}

// hasLine reports whether a whole further line is already buffered: then
// the client pipelined it (RFC 2449 §6.6) and replies can wait to be flushed.
func (lr *lineReader) hasLine() bool {
	b, _ := lr.br.Peek(lr.br.Buffered())
	return bytes.IndexByte(b, '\n') >= 0
}
