package relay

// Delivery status notifications, RFC 3464, in a multipart/report (RFC 6522):
// a human-readable part, the message/delivery-status part, and the
// original message's header as text/rfc822-headers.

import (
	"fmt"
	"strings"
	"time"
)

const (
	actionFailed  = "failed"
	actionDelayed = "delayed"
)

type dsnInput struct {
	ID         string // the DSN's queue ID: makes Message-ID and boundary
	Hostname   string // Reporting-MTA
	Postmaster string // From
	Env        *Envelope
	Recipients []Recipient // those reported
	Action     string      // actionFailed or actionDelayed
	RetryUntil time.Time   // Will-Retry-Until for delayed
	Now        time.Time
	Header     []byte // original header section
}

// buildDSN renders a DSN. It depends only on its input, so tests can
// compare it with a golden file.
func buildDSN(in dsnInput) []byte {
	var b strings.Builder
	crlf := func(format string, args ...any) {
		fmt.Fprintf(&b, format, args...)
		b.WriteString("\r\n")
	}
	boundary := "=_" + in.ID + "/" + in.Hostname
	if len(boundary) > 70 { // RFC 2046 §5.1.1; the ID keeps it unique
		boundary = boundary[:70]
	}
	subject := "Undelivered Mail Returned to Sender"
	if in.Action == actionDelayed {
		subject = "Delayed Mail (still being retried)"
	}
	date := in.Now.Format(time.RFC1123Z)
	crlf("From: Mail Delivery System <%s>", in.Postmaster)
	crlf("To: <%s>", in.Env.From)
	crlf("Subject: %s", subject)
	crlf("Date: %s", date)
	crlf("Message-ID: <%s@%s>", in.ID, in.Hostname)
	crlf("Auto-Submitted: auto-replied") // RFC 3834 §5
	crlf("MIME-Version: 1.0")
	crlf("Content-Type: multipart/report; report-type=delivery-status;")
	crlf("\tboundary=\"%s\"", boundary)
	crlf("")
	crlf("This is a MIME-encapsulated message.")
	crlf("")

	crlf("--%s", boundary)
	crlf("Content-Type: text/plain; charset=utf-8")
	crlf("Content-Description: Notification")
	crlf("Content-Transfer-Encoding: 8bit")
	crlf("")
	crlf("This is the mail system at host %s.", in.Hostname)
	crlf("")
	if in.Action == actionDelayed {
		crlf("Your message could not be delivered yet to the recipients below.")
		crlf("It will be retried until %s; you need not resend it.", in.RetryUntil.Format(time.RFC1123Z))
	} else {
		crlf("Your message could not be delivered to the recipients below.")
		crlf("This is a permanent error; the message was not delivered to them.")
	}
	crlf("")
	for _, r := range in.Recipients {
		line := "<" + r.Addr + ">: " + diagText(r.Diagnostic)
		if r.RemoteMTA != "" {
			line += " (at " + r.RemoteMTA + ")"
		}
		crlf("%s", line)
	}
	crlf("")

	// RFC 3464 §2.2 per-message fields, §2.3 per-recipient fields.
	crlf("--%s", boundary)
	crlf("Content-Type: message/delivery-status")
	crlf("Content-Description: Delivery report")
	crlf("")
	crlf("Reporting-MTA: dns; %s", in.Hostname)
	crlf("X-Mailsuite-Queue-ID: %s", in.Env.ID)
	crlf("Arrival-Date: %s", in.Env.Created.Format(time.RFC1123Z))
	for _, r := range in.Recipients {
		crlf("")
		crlf("Final-Recipient: rfc822; %s", r.Addr)
		crlf("Action: %s", in.Action)
		crlf("Status: %s", dsnStatus(r.Status, in.Action))
		if r.RemoteMTA != "" {
			crlf("Remote-MTA: dns; %s", r.RemoteMTA)
		}
		if r.Diagnostic != "" {
			crlf("Diagnostic-Code: %s", oneLine(r.Diagnostic))
		}
		if !in.Env.LastAttempt.IsZero() {
			crlf("Last-Attempt-Date: %s", in.Env.LastAttempt.Format(time.RFC1123Z))
		}
		if in.Action == actionDelayed {
			crlf("Will-Retry-Until: %s", in.RetryUntil.Format(time.RFC1123Z))
		}
	}
	crlf("")

	crlf("--%s", boundary)
	crlf("Content-Type: text/rfc822-headers")
	crlf("Content-Description: Undelivered Message Headers")
	crlf("")
	b.WriteString(toCRLF(string(in.Header)))
	crlf("")
	crlf("--%s--", boundary)
	return []byte(b.String())
}

// dsnStatus makes the Status field agree with the Action (RFC 3464
// §2.3.4): a failed recipient has a 5.x.x status, a delayed one 4.x.x.
func dsnStatus(status, action string) string {
	if status == "" {
		status = "4.0.0"
	}
	if action == actionFailed {
		return "5" + status[1:]
	}
	return "4" + status[1:]
}

// diagText is the human-readable part of a diagnostic "type; text".
func diagText(d string) string {
	if _, text, ok := strings.Cut(d, "; "); ok {
		return oneLine(text)
	}
	if d == "" {
		return "delivery failed"
	}
	return oneLine(d)
}

func toCRLF(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.ReplaceAll(s, "\n", "\r\n")
}
