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
