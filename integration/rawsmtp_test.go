package integration

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"strings"
	"time"
)

// rawSMTP is a hand-driven SMTP client, so a test can stop in the middle
// of DATA.
type rawSMTP struct {
	conn net.Conn
	r    *bufio.Reader
	rest []byte
}

func dialRawSMTP(addr string) (*rawSMTP, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	rc := &rawSMTP{conn: conn, r: bufio.NewReader(conn)}
	if line, err := rc.readReply(5 * time.Second); err != nil || !strings.HasPrefix(line, "220") {
		conn.Close()
		return nil, fmt.Errorf("greeting %q: %v", line, err)
	}
	return rc, nil
}

func (rc *rawSMTP) write(p []byte) error {
	rc.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := rc.conn.Write(p)
	return err
}

// readReply reads one (possibly multi-line) reply and returns its last line.
func (rc *rawSMTP) readReply(limit time.Duration) (string, error) {
	all, err := rc.readReplyLines(limit)
	lines := strings.Split(strings.TrimRight(all, "\r\n"), "\n")
	return strings.TrimSpace(lines[len(lines)-1]), err
}

// readReplyLines reads one multi-line reply (EHLO) and returns all of it.
func (rc *rawSMTP) readReplyLines(limit time.Duration) (string, error) {
	rc.conn.SetReadDeadline(time.Now().Add(limit))
	var b strings.Builder
	for range 100 {
		line, err := rc.r.ReadString('\n')
		b.WriteString(line)
		if err != nil {
			return b.String(), err
		}
		if len(line) < 4 || line[3] != '-' {
			return b.String(), nil
		}
	}
	return b.String(), fmt.Errorf("reply too long")
}

func (rc *rawSMTP) step(cmd, want string) error {
	if err := rc.write([]byte(cmd + "\r\n")); err != nil {
		return err
	}
	line, err := rc.readReply(5 * time.Second)
	if err != nil || !strings.HasPrefix(line, want) {
		return fmt.Errorf("%s: %q, %v", cmd, line, err)
	}
	return nil
}

func (rc *rawSMTP) beginData(from, to string) error {
	for _, s := range [][2]string{
		{"EHLO client.example.net", "250"}, {"MAIL FROM:<" + from + ">", "250"},
		{"RCPT TO:<" + to + ">", "250"}, {"DATA", "354"},
	} {
		if err := rc.step(s[0], s[1]); err != nil {
			return err
		}
	}
	return nil
}

// dotStuff prepares message bytes for DATA (RFC 5321 §4.5.2).
func dotStuff(msg []byte) []byte {
	out := bytes.ReplaceAll(msg, []byte("\r\n."), []byte("\r\n.."))
	if bytes.HasPrefix(out, []byte(".")) {
		out = append([]byte("."), out...)
	}
	return out
}
