package relay

// Envelope file format, version 1. Line-based, one record per line, LF
// terminated, free text always as a Go-quoted string so no value can
// contain a line break or a field separator:
//
//	mailsuite-envelope 1
//	id <queue id>
//	from <quoted sender; "" for a bounce>
//	created <RFC 3339 time>
//	attempts <n>
//	next <RFC 3339 time>
//	last <RFC 3339 time or ->
//	warned <0|1>
//	bounces <n>
//	rcpt <state> <notified 0|1> <status or -> <tls> <time or -> <quoted addr> <quoted remote MTA> <quoted diagnostic>
//	...
//	end
//
// Every key appears once, in this order, with at least one rcpt line.
// Unknown keys or versions are rejected rather than guessed at.

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

const envelopeMagic = "mailsuite-envelope 1"

// State is a recipient's delivery state.
type State string

const (
	StatePending   State = "pending"
	StateDelivered State = "delivered"
	StateFailed    State = "failed"
)

// TLS outcomes recorded per recipient.
const (
	TLSUsedNone       = "none"       // delivered in clear
	TLSUsedUnverified = "unverified" // STARTTLS, certificate not verified
	TLSUsedVerified   = "verified"   // STARTTLS or implicit TLS, verified
)

// Recipient is one envelope recipient and where its delivery stands.
type Recipient struct {
	Addr  string
	State State
	// Notified: a failure (or delay) of this recipient has been reported
	// to the sender in a DSN.
	Notified bool
	// Status is the RFC 3463 enhanced status of the last attempt ("" none).
	Status string
	// TLS is how the last attempt's connection was protected ("" none yet).
	TLS string
	// Updated is when State, Status or Diagnostic last changed.
	Updated time.Time
	// RemoteMTA is the host that gave the last answer ("" none).
	RemoteMTA string
	// Diagnostic is the last answer, "smtp; 550 5.1.1 ..." or
	// "x-mailsuite; ..." for local errors (RFC 3464 §2.3.6).
	Diagnostic string
}

// Envelope is a queued message's metadata.
type Envelope struct {
	ID          string
	From        string // "" for a bounce: never bounce it
	Created     time.Time
	Attempts    int
	Next        time.Time // next attempt not before
	LastAttempt time.Time // zero if never tried
	Warned      bool      // a delay DSN has been sent
	Bounces     int       // DSNs generated for this message
	Recipients  []Recipient
}

// Pending lists the recipients still to be delivered.
func (e *Envelope) Pending() []string {
	var out []string
	for _, r := range e.Recipients {
		if r.State == StatePending {
			out = append(out, r.Addr)
		}
	}
	return out
}

func (e *Envelope) recipient(addr string) *Recipient {
	for i := range e.Recipients {
		if e.Recipients[i].Addr == addr {
			return &e.Recipients[i]
		}
	}
	return nil
}

// Marshal encodes e in the version 1 format.
func (e *Envelope) Marshal() []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\nid %s\nfrom %s\ncreated %s\nattempts %d\nnext %s\nlast %s\nwarned %s\nbounces %d\n",
		envelopeMagic, e.ID, strconv.Quote(e.From), fmtTime(e.Created), e.Attempts,
		fmtTime(e.Next), fmtTime(e.LastAttempt), fmtBool(e.Warned), e.Bounces)
	for _, r := range e.Recipients {
		fmt.Fprintf(&b, "rcpt %s %s %s %s %s %s %s %s\n", r.State, fmtBool(r.Notified),
			dash(r.Status), dash(r.TLS), fmtTime(r.Updated),
			strconv.Quote(r.Addr), strconv.Quote(r.RemoteMTA), strconv.Quote(r.Diagnostic))
	}
	b.WriteString("end\n")
	return []byte(b.String())
}

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
// a local part, "@", a domain; no controls, spaces or angle brackets.
func checkAddr(a string) error {
	at := strings.LastIndexByte(a, '@')
	if at <= 0 || at == len(a)-1 || len(a) > 512 {
		return fmt.Errorf("bad address %q", a)
	}
	if hasCtl(a) || strings.ContainsAny(a, " <>") {
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

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func fmtBool(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// ValidID reports whether id is a well-formed queue ID (and thus safe as a
// file name).
func ValidID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i, c := range id {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case (c == '.' || c == '-' || c == '_') && i > 0:
		default:
			return false
		}
	}
	return true
}
