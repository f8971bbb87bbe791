package relay

// The strict parser of the envelope format described in envelope.go.

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseEnvelope decodes the version 1 format strictly.
func ParseEnvelope(data []byte) (*Envelope, error) {
	if len(data) > maxEnvelopeSize {
		return nil, errors.New("relay: envelope too large")
	}
	s := string(data)
	if !strings.HasSuffix(s, "\n") {
		return nil, errors.New("relay: envelope truncated")
	}
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	p := &envParser{lines: lines}
	e, err := p.parse()
	if err != nil {
		return nil, fmt.Errorf("relay: envelope line %d: %w", p.n, err)
	}
	return e, nil
}

const maxEnvelopeSize = 4 << 20

type envParser struct {
	lines []string
	n     int // 1-based number of the line last taken
}

// field takes the next line, which must start with key, and returns the rest.
func (p *envParser) field(key string) (string, error) {
	if p.n >= len(p.lines) {
		return "", fmt.Errorf("missing %q", key)
	}
	line := p.lines[p.n]
	p.n++
	rest, ok := strings.CutPrefix(line, key+" ")
	if !ok {
		return "", fmt.Errorf("want %q", key)
	}
	return rest, nil
}

func (p *envParser) parse() (*Envelope, error) {
	if len(p.lines) == 0 || p.lines[0] != envelopeMagic {
		p.n = 1
		return nil, errors.New("not a version 1 envelope")
	}
	p.n = 1
	e := &Envelope{}
	var err error
	var v string
	if v, err = p.field("id"); err != nil {
		return nil, err
	}
	if !ValidID(v) {
		return nil, fmt.Errorf("bad id %q", v)
	}
	e.ID = v
	if v, err = p.field("from"); err != nil {
		return nil, err
	}
	if e.From, err = unquoteAll(v); err != nil {
		return nil, err
	}
	if e.From != "" {
		if err := checkAddr(e.From); err != nil {
			return nil, err
		}
	}
	for _, f := range []struct {
		key string
		t   *time.Time
		opt bool
	}{{"created", &e.Created, false}, {"attempts", nil, false}, {"next", &e.Next, false}, {"last", &e.LastAttempt, true}} {
		if v, err = p.field(f.key); err != nil {
			return nil, err
		}
		if f.t == nil {
			if e.Attempts, err = parseCount(v); err != nil {
				return nil, err
			}
			continue
		}
		if *f.t, err = parseTime(v, f.opt); err != nil {
			return nil, err
		}
	}
	if v, err = p.field("warned"); err != nil {
		return nil, err
	}
	if e.Warned, err = parseBool(v); err != nil {
		return nil, err
	}
	if v, err = p.field("bounces"); err != nil {
		return nil, err
	}
	if e.Bounces, err = parseCount(v); err != nil {
		return nil, err
	}
	for p.n < len(p.lines) && strings.HasPrefix(p.lines[p.n], "rcpt ") {
		v, _ := p.field("rcpt")
		r, err := parseRecipient(v)
		if err != nil {
			return nil, err
		}
		if e.recipient(r.Addr) != nil {
			return nil, fmt.Errorf("duplicate recipient %q", r.Addr)
		}
		e.Recipients = append(e.Recipients, r)
	}
	if len(e.Recipients) == 0 {
		return nil, errors.New("no recipients")
	}
	if p.n >= len(p.lines) || p.lines[p.n] != "end" {
		p.n++
		return nil, errors.New(`want "end"`)
	}
	p.n++
	if p.n != len(p.lines) {
		p.n++
		return nil, errors.New(`data after "end"`)
	}
	return e, nil
}

func parseRecipient(v string) (Recipient, error) {
	var r Recipient
	parts := strings.SplitN(v, " ", 6)
	if len(parts) != 6 {
		return r, errors.New("short rcpt line")
	}
	switch State(parts[0]) {
	case StatePending, StateDelivered, StateFailed:
		r.State = State(parts[0])
	default:
		return r, fmt.Errorf("bad state %q", parts[0])
	}
	var err error
	if r.Notified, err = parseBool(parts[1]); err != nil {
		return r, err
	}
	if parts[2] != "-" {
		if !validStatus(parts[2]) {
			return r, fmt.Errorf("bad status %q", parts[2])
		}
		r.Status = parts[2]
	}
	switch parts[3] {
	case "-":
	case TLSUsedNone, TLSUsedUnverified, TLSUsedVerified:
		r.TLS = parts[3]
	default:
		return r, fmt.Errorf("bad tls %q", parts[3])
	}
	if r.Updated, err = parseTime(parts[4], true); err != nil {
		return r, err
	}
	var qs [3]string
	rest := parts[5]
	for i := range qs {
		if i > 0 {
			var ok bool
			if rest, ok = strings.CutPrefix(rest, " "); !ok {
				return r, errors.New("want space between quoted fields")
			}
		}
		q, err := strconv.QuotedPrefix(rest)
		if err != nil || q[0] != '"' {
			return r, errors.New("bad quoted field")
		}
		rest = rest[len(q):]
		if qs[i], err = strconv.Unquote(q); err != nil {
			return r, err
		}
	}
	if rest != "" {
		return r, errors.New("trailing data on rcpt line")
	}
	if err := checkAddr(qs[0]); err != nil {
		return r, err
	}
	r.Addr, r.RemoteMTA, r.Diagnostic = qs[0], qs[1], qs[2]
	if hasCtl(r.RemoteMTA) || hasCtl(r.Diagnostic) {
		return r, errors.New("control character in rcpt field")
	}
	return r, nil
}

// unquoteAll unquotes a value that must be exactly one Go double-quoted string.
func unquoteAll(v string) (string, error) {
	if len(v) == 0 || v[0] != '"' {
		return "", errors.New("want quoted string")
	}
	s, err := strconv.Unquote(v)
	if err != nil {
		return "", fmt.Errorf("bad quoted string: %w", err)
	}
	return s, nil
}

// checkAddr accepts what can safely go between < and > in MAIL/RCPT:
// a local part, "@", a domain; no controls or angle brackets, and spaces
// only inside a quoted local part (RFC 5321 §4.1.2).
func checkAddr(a string) error {
	at := strings.LastIndexByte(a, '@')
	if at <= 0 || at == len(a)-1 || len(a) > 512 {
		return fmt.Errorf("bad address %q", a)
	}
	local, domain := a[:at], a[at+1:]
	quoted := len(local) >= 2 && local[0] == '"' && local[len(local)-1] == '"'
	if hasCtl(a) || strings.ContainsAny(a, "<>") || strings.ContainsRune(domain, ' ') ||
		(!quoted && strings.ContainsRune(local, ' ')) {
		return fmt.Errorf("bad address %q", a)
	}
	return nil
}

func hasCtl(s string) bool {
	for _, c := range s {
		if c < 0x20 || c == 0x7f || c == 0xfffd {
			return true
		}
	}
	return false
}

// validStatus checks an RFC 3463 status code class.subject.detail.
func validStatus(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 || (parts[0] != "2" && parts[0] != "4" && parts[0] != "5") {
		return false
	}
	for _, p := range parts[1:] {
		if len(p) == 0 || len(p) > 3 {
			return false
		}
		for _, c := range p {
			if c < '0' || c > '9' {
				return false
			}
		}
	}
	return true
}

func parseCount(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 1<<30 || strconv.Itoa(n) != v {
		return 0, fmt.Errorf("bad count %q", v)
	}
	return n, nil
}

func parseBool(v string) (bool, error) {
	switch v {
	case "0":
		return false, nil
	case "1":
		return true, nil
	}
	return false, fmt.Errorf("bad flag %q", v)
}

func parseTime(v string, optional bool) (time.Time, error) {
	if v == "-" && optional {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil || t.IsZero() || fmtTime(t) != v {
		return time.Time{}, fmt.Errorf("bad time %q", v)
	}
	return t, nil
}
