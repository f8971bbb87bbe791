package pop3d

import (
	"bufio"
	"errors"
	"io"
)

// msgWriter streams a stored message as a POP3 multi-line response body
// (RFC 1939 §3): every line ending becomes CRLF, lines starting with "."
// get another ".", and ".CRLF" ends it. It never holds more than one buffer
// of the message, so a 50 MB message costs 32 KB of memory.
type msgWriter struct {
	br *bufio.Reader // reused across messages of a session
}

func newMsgWriter() *msgWriter {
	return &msgWriter{br: bufio.NewReaderSize(nil, 32*1024)}
}

// write copies r to w. bodyLines < 0 sends the whole message; otherwise
// (TOP, RFC 1939 §7) the header, the blank line and at most bodyLines lines
// of the body. It reports whether r was read to its end.
func (m *msgWriter) write(w *bufio.Writer, r io.Reader, bodyLines int) (complete bool, err error) {
	m.br.Reset(r)
	defer m.br.Reset(nil)
	var (
		lineStart = true  // next byte begins a line
		prevCR    = false // last byte written was CR (line split by buffer)
		inHeader  = true
		emptyLine = true // the current line has no content so far
		sent      = 0    // body lines sent (TOP)
	)
	for {
		if !inHeader && bodyLines >= 0 && sent >= bodyLines && lineStart {
			return false, terminate(w, lineStart)
		}
		frag, rerr := m.br.ReadSlice('\n')
		if len(frag) > 0 {
			if lineStart && frag[0] == '.' {
				if err := w.WriteByte('.'); err != nil {
					return false, err
				}
			}
			if frag[len(frag)-1] == '\n' {
				body := frag[:len(frag)-1]
				hasCR := len(body) > 0 && body[len(body)-1] == '\r' || len(body) == 0 && prevCR
				if len(body) > 0 && body[len(body)-1] == '\r' {
					body = body[:len(body)-1]
				}
				if _, err := w.Write(body); err != nil {
					return false, err
				}
				ending := "\r\n"
				if hasCR && len(frag) == 1 {
					// A lone "\n" whose CR ended the previous fragment.
					ending = "\n"
				}
				if _, err := w.WriteString(ending); err != nil {
					return false, err
				}
				if inHeader {
					// RFC 5322 §2.1: the first empty line ends the header.
					inHeader = !(emptyLine && len(body) == 0)
				} else {
					sent++
				}
				lineStart, prevCR, emptyLine = true, false, true
			} else {
				if _, err := w.Write(frag); err != nil {
					return false, err
				}
				prevCR = frag[len(frag)-1] == '\r'
				if !(len(frag) == 1 && prevCR) {
					emptyLine = false
				}
				lineStart = false
			}
		}
		switch {
		case rerr == nil, errors.Is(rerr, bufio.ErrBufferFull):
		case errors.Is(rerr, io.EOF):
			return true, terminate(w, lineStart)
		default:
			return false, rerr
		}
	}
}

// terminate ends the multi-line response, first ending a last line that
// lacked a newline (so "." stands on a line of its own).
func terminate(w *bufio.Writer, lineStart bool) error {
	if !lineStart {
		if _, err := w.WriteString("\r\n"); err != nil {
			return err
		}
	}
	_, err := w.WriteString(".\r\n")
	return err
}
