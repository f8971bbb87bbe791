package relay

// Delivery of one destination group: MX hosts in order, each address of
// each host, until one session answers for every recipient (RFC 5321
// §5.1), and the mapping of what went wrong to RFC 3463 status codes.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/emersion/go-smtp"
)

// Bounds on one attempt, so that a domain publishing many hosts or
// addresses (all timing out, say) cannot hold a worker for hours: at most
// maxMXHosts hosts resolved and maxMXAddrs addresses dialled, the limits
// of Postfix (smtp_mx_address_limit) and Exim (hosts_max_try).
const (
	maxMXHosts = 10
	maxMXAddrs = 5
)

// deliverRemote sends one group by MX (or smarthost) in one transaction and
// returns the recipients' outcomes; those a 452 "too many recipients" left
// out have none and go in the next transaction.
func (q *Queue) deliverRemote(ctx context.Context, e *Envelope, g group, msg *message) map[string]outcome {
	res := map[string]outcome{}
	setAll := func(rcpts []string, de *deliveryError) {
		for _, a := range rcpts {
			if _, done := res[a]; !done {
				res[a] = errOutcome(de)
			}
		}
	}
	smart := g.domain == ""
	var hosts []string
	port := strconv.Itoa(q.opts.MXPort)
	implicit := false
	if smart {
		h, p, _ := net.SplitHostPort(q.opts.Smarthost)
		hosts, port = []string{h}, p
	} else {
		var err error
		hosts, err = q.mxHosts(ctx, g.domain)
		if err != nil {
			setAll(g.rcpts, asDeliveryError(err))
			return res
		}
		implicit = len(hosts) == 1 && hosts[0] == g.domain
	}
	var lastErr *deliveryError
	remaining := g.rcpts
	tried := 0
	for i, host := range hosts {
		if i == maxMXHosts || tried == maxMXAddrs {
			break
		}
		addrs, err := q.hostAddrs(ctx, host)
		if err != nil {
			de := asDeliveryError(err)
			if !implicit && !smart && !de.Temporary() {
				// A broken MX record is the domain's problem, maybe
				// fixed soon; only a missing domain is final.
				de = tempErr("4.4.4", "MX host %s: %s", host, de.diag)
			}
			lastErr = de
			continue
		}
		for _, addr := range addrs {
			if tried == maxMXAddrs {
				break
			}
			tried++
			if ctx.Err() != nil {
				setAll(remaining, tempErr("4.4.1", "delivery cut off: %v", ctx.Err()))
				return res
			}
			de := q.tryHost(ctx, e, host, addr, port, smart, remaining, msg, res, false)
			if de == nil {
				return res // recipients a 452 left out have no result yet
			}
			lastErr = de
			remaining = unanswered(g.rcpts, res)
			if !de.Temporary() || len(remaining) == 0 {
				setAll(remaining, de)
				return res
			}
		}
	}
	if lastErr == nil {
		lastErr = tempErr("4.4.4", "no usable mail server for %s", g.domain)
	}
	setAll(remaining, lastErr)
	return res
}

func unanswered(rcpts []string, res map[string]outcome) []string {
	var out []string
	for _, a := range rcpts {
		if _, done := res[a]; !done {
			out = append(out, a)
		}
	}
	return out
}

func asDeliveryError(err error) *deliveryError {
	var de *deliveryError
	if errors.As(err, &de) {
		return de
	}
	return tempErr("4.0.0", "%v", err)
}

func errOutcome(de *deliveryError) outcome {
	st := StatePending
	if !de.Temporary() {
		st = StateFailed
	}
	return outcome{state: st, status: de.status, diag: de.diag, remote: de.remote}
}

// replyError turns an SMTP reply into a deliveryError (RFC 3463 status
// from the enhanced code, or class.0.0 without one).
func replyError(se *smtp.SMTPError, host string) *deliveryError {
	class := se.Code / 100
	if class != 4 && class != 5 {
		class = 4 // an unexpected code is a protocol error: retry
	}
	status := fmt.Sprintf("%d.0.0", class)
	ec := se.EnhancedCode
	if ec != smtp.EnhancedCodeNotSet && ec != smtp.NoEnhancedCode && ec[0] == class {
		// go-smtp takes any integers (Atoi): keep only what RFC 3463 §2
		// allows, 1 to 3 digits, so the envelope can store it.
		if s := fmt.Sprintf("%d.%d.%d", ec[0], ec[1], ec[2]); validStatus(s) {
			status = s
		}
	}
	text := oneLine(se.Message)
	if ec != smtp.EnhancedCodeNotSet && ec != smtp.NoEnhancedCode {
		text = fmt.Sprintf("%d.%d.%d %s", ec[0], ec[1], ec[2], text)
	}
	return &deliveryError{status: status, diag: fmt.Sprintf("smtp; %d %s", se.Code, text), remote: host}
}

// classify maps an error of the SMTP conversation: replies keep their
// class, anything else (I/O, timeouts) is a temporary host failure.
func classify(err error, host, what string) *deliveryError {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return replyError(se, host)
	}
	de := tempErr("4.4.2", "%s %s: %v", what, host, err)
	de.remote = host
	return de
}
