package imapd

import (
	"bufio"
	"io"
)

// crlfReader turns every bare LF into CRLF, so a message stored with Unix
// line endings is served as IMAP requires (RFC 3501 §2.2: CRLF lines) and
// its octet count matches RFC822.SIZE (mailstore's VSize).
type crlfReader struct {
	r       *bufio.Reader
	prevCR  bool
	pending bool // an LF is owed after the CR just emitted
}

func newCRLFReader(r io.Reader) *crlfReader {
	return &crlfReader{r: bufio.NewReaderSize(r, 8<<10)}
}

func (c *crlfReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if c.pending {
			p[n] = '\n'
			n++
			c.pending = false
			c.prevCR = false
			continue
		}
		b, err := c.r.ReadByte()
		if err != nil {
			if n > 0 && err == io.EOF {
				return n, nil
			}
			return n, err
		}
		if b == '\n' && !c.prevCR {
			p[n] = '\r'
			n++
			c.pending = true
			continue
		}
		p[n] = b
		n++
		c.prevCR = b == '\r'
	}
	return n, nil
}
