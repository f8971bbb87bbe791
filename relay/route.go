package relay

// MX resolution, RFC 5321 §5.1: MX records in preference order (equal
// preferences shuffled), the domain itself as implicit MX when it has none,
// RFC 7505 null MX as a permanent failure. NXDOMAIN is permanent; SERVFAIL,
// timeouts and other resolver trouble are temporary.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"sort"
	"strings"

	"github.com/miekg/dns"
	"golang.org/x/net/idna"
)

// deliveryError is a failure with its RFC 3463 status and RFC 3464
// diagnostic; whether to retry is a method of it.
type deliveryError struct {
	status string // "4.4.3", "5.1.2", ...
	diag   string // "smtp; 550 5.1.1 no such user" or "x-mailsuite; ..."
	remote string // host that answered, if any
}

func (e *deliveryError) Error() string   { return e.status + " " + e.diag }
func (e *deliveryError) Temporary() bool { return !strings.HasPrefix(e.status, "5") }

func tempErr(status, format string, args ...any) *deliveryError {
	return &deliveryError{status: status, diag: "x-mailsuite; " + oneLine(fmt.Sprintf(format, args...))}
}

func permErr(status, format string, args ...any) *deliveryError {
	return tempErr(status, format, args...)
}

// dnsServer picks the resolver: Options.DNSServer, else resolv.conf.
func dnsServer(opt string) string {
	if opt != "" {
		return opt
	}
	if cc, err := dns.ClientConfigFromFile("/etc/resolv.conf"); err == nil && len(cc.Servers) > 0 {
		return net.JoinHostPort(cc.Servers[0], cc.Port)
	}
	return "127.0.0.1:53"
}

// query asks one question, over UDP and again over TCP if truncated.
func (q *Queue) query(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	c := &dns.Client{Net: "udp", Timeout: q.opts.DNSTimeout}
	r, _, err := c.ExchangeContext(ctx, m, q.dns)
	if err == nil && r.Truncated {
		c.Net = "tcp"
		r, _, err = c.ExchangeContext(ctx, m, q.dns)
	}
	if err != nil {
		return nil, tempErr("4.4.3", "DNS %s %s: %v", dns.TypeToString[qtype], name, err)
	}
	switch r.Rcode {
	case dns.RcodeSuccess:
		return r, nil
	case dns.RcodeNameError:
		return nil, permErr("5.1.2", "DNS %s %s: no such domain", dns.TypeToString[qtype], name)
	}
	return nil, tempErr("4.4.3", "DNS %s %s: %s", dns.TypeToString[qtype], name, dns.RcodeToString[r.Rcode])
}

// mxHosts returns the hosts to try for domain, best first.
func (q *Queue) mxHosts(ctx context.Context, domain string) ([]string, error) {
	ascii, err := idna.Lookup.ToASCII(domain)
	if err != nil || ascii == "" {
		return nil, permErr("5.1.2", "bad domain %q", domain)
	}
	r, err := q.query(ctx, ascii, dns.TypeMX)
	if err != nil {
		return nil, err
	}
	var mxs []*dns.MX
	for _, rr := range r.Answer {
		if mx, ok := rr.(*dns.MX); ok {
			mxs = append(mxs, mx)
		}
	}
	if len(mxs) == 0 {
		return []string{ascii}, nil // RFC 5321 §5.1: implicit MX
	}
	rand.Shuffle(len(mxs), func(i, j int) { mxs[i], mxs[j] = mxs[j], mxs[i] })
	sort.SliceStable(mxs, func(i, j int) bool { return mxs[i].Preference < mxs[j].Preference })
	var hosts []string
	for _, mx := range mxs {
		if mx.Mx != "." {
			hosts = append(hosts, strings.TrimSuffix(mx.Mx, "."))
		}
	}
	// RFC 7505 §3: an MX with target "." means "no mail here". It should
	// be the only one; beside real hosts it is ignored, but when every
	// target is "." (the record repeated) there is nowhere to go, for good.
	if len(hosts) == 0 {
		return nil, permErr("5.1.10", "%s does not accept mail (null MX, RFC 7505)", domain)
	}
	return hosts, nil
}

// hostAddrs resolves a host to its IPv4 then IPv6 addresses. A host that
// does not exist or has no address yields none and no error if the other
// family had some; the error of the A query otherwise.
func (q *Queue) hostAddrs(ctx context.Context, host string) ([]string, error) {
	if ip := net.ParseIP(host); ip != nil {
		return []string{ip.String()}, nil
	}
	var addrs []string
	var firstErr error
	for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
		r, err := q.query(ctx, host, t)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		for _, rr := range r.Answer {
			switch v := rr.(type) {
			case *dns.A:
				addrs = append(addrs, v.A.String())
			case *dns.AAAA:
				addrs = append(addrs, v.AAAA.String())
			}
		}
	}
	if len(addrs) == 0 {
		if firstErr != nil {
			return nil, firstErr
		}
		return nil, permErr("5.1.2", "host %s has no address", host)
	}
	return addrs, nil
}
