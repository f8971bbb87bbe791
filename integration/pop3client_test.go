package integration

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// pop3Client is a minimal RFC 1939 client (no POP3 client library is in
// the module): enough to log in, list, fetch and delete like a phone does.
// Every read and write has a deadline.
type pop3Client struct {
	conn net.Conn
	r    *bufio.Reader
}

const pop3Timeout = 20 * time.Second

// dialPOP3S connects to the implicit-TLS POP3 port and logs in with USER/PASS.
func dialPOP3S(addr string, tc *tls.Config, user, pass string) (*pop3Client, error) {
	p, err := dialPOP3SGreeting(addr, tc)
	if err != nil {
		return nil, err
	}
	if _, err := p.cmd("USER " + user); err != nil {
		p.Close()
		return nil, err
	}
	if _, err := p.cmd("PASS " + pass); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// dialPOP3SGreeting connects to the implicit-TLS POP3 port and reads the
// greeting (AUTHORIZATION state).
func dialPOP3SGreeting(addr string, tc *tls.Config) (*pop3Client, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", addr, tc)
	if err != nil {
		return nil, err
	}
	p := &pop3Client{conn: conn, r: bufio.NewReader(conn)}
	if _, err := p.status(); err != nil {
		conn.Close()
		return nil, fmt.Errorf("greeting: %w", err)
	}
	return p, nil
}

func (p *pop3Client) Close() error { return p.conn.Close() }

func (p *pop3Client) readLine() (string, error) {
	p.conn.SetReadDeadline(time.Now().Add(pop3Timeout))
	line, err := p.r.ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// status reads a status line; -ERR becomes an error carrying the text.
func (p *pop3Client) status() (string, error) {
	line, err := p.readLine()
	if err != nil {
		return "", err
	}
	if strings.HasPrefix(line, "+OK") {
		return line, nil
	}
	return "", fmt.Errorf("pop3: %s", line)
}

// cmd sends a command and returns its +OK line; -ERR is an error naming
// the command's verb (never its arguments: they may be a password).
func (p *pop3Client) cmd(line string) (string, error) {
	verb, _, _ := strings.Cut(line, " ")
	reply, err := p.raw(line)
	if err != nil {
		return "", fmt.Errorf("%s: %w", verb, err)
	}
	if !strings.HasPrefix(reply, "+OK") {
		return "", fmt.Errorf("%s: pop3: %s", verb, reply)
	}
	return reply, nil
}

// raw sends a line and returns the next line as it is (SASL exchanges,
// RFC 5034, answer "+ challenge").
func (p *pop3Client) raw(line string) (string, error) {
	p.conn.SetWriteDeadline(time.Now().Add(pop3Timeout))
	if _, err := p.conn.Write([]byte(line + "\r\n")); err != nil {
		return "", err
	}
	return p.readLine()
}

// multi sends a command with a multi-line answer and returns its lines,
// dot-unstuffed (RFC 1939 §3).
func (p *pop3Client) multi(line string) ([]string, error) {
	if _, err := p.cmd(line); err != nil {
		return nil, err
	}
	var out []string
	for range 1_000_000 {
		l, err := p.readLine()
		if err != nil {
			return nil, err
		}
		if l == "." {
			return out, nil
		}
		out = append(out, strings.TrimPrefix(l, "."))
	}
	return nil, fmt.Errorf("pop3: %s: answer too long", line)
}

// uidl returns message number → unique id.
func (p *pop3Client) uidl() (map[int]string, error) {
	lines, err := p.multi("UIDL")
	if err != nil {
		return nil, err
	}
	out := map[int]string{}
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) != 2 {
			return nil, fmt.Errorf("pop3: bad UIDL line %q", l)
		}
		n, err := strconv.Atoi(f[0])
		if err != nil {
			return nil, fmt.Errorf("pop3: bad UIDL line %q", l)
		}
		out[n] = f[1]
	}
	return out, nil
}

// retr returns message n with CRLF line ends.
func (p *pop3Client) retr(n int) ([]byte, error) {
	lines, err := p.multi(fmt.Sprintf("RETR %d", n))
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	for _, l := range lines {
		b.WriteString(l)
		b.WriteString("\r\n")
	}
	return b.Bytes(), nil
}

func (p *pop3Client) quit() error {
	_, err := p.cmd("QUIT")
	p.conn.Close()
	return err
}

// uidlSet logs in afresh and returns the set of UIDLs (a phone's view).
func uidlSet(addr string, tc *tls.Config, user, pass string) (map[string]bool, error) {
	p, err := dialPOP3S(addr, tc, user, pass)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	m, err := p.uidl()
	if err != nil {
		return nil, err
	}
	set := map[string]bool{}
	for _, u := range m {
		set[u] = true
	}
	return set, p.quit()
}
