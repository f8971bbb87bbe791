package smtpd

import (
	"errors"
	"strings"
	"unicode/utf8"

	"github.com/mailsuite/mailsuite/accounts"
)

// checkRecipient refuses recipient addresses that are not a plain
// local-part@domain, before anything looks them up. go-smtp has already
// dropped a source route (<@a:b@c>, RFC 5321 §4.1.2, ignored per §C) and
// unquoted a quoted local part, so "user@other.com"@example.com reaches us
// as user@other.com@example.com: a local part holding '@' is refused here,
// so neither the account lookup nor the relay can read it another way.
// Address literals (user@[192.0.2.1], RFC 5321 §4.1.3) and domains with a
// trailing dot are refused too: we deliver to named domains only.
//
// The percent hack and bang paths (user%other@ours, other!user@ours) pass
// this check; for our domains the account lookup finds no such user (550
// 5.1.1), and for remote domains the relay sends to that domain as given.
func checkRecipient(addr string) error {
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 {
		return errBadAddress
	}
	local, domain := addr[:at], addr[at+1:]
	if strings.HasPrefix(domain, "[") {
		return errRelayDenied
	}
	if !validLocalPart(local) || !validDomain(domain) {
		return errBadAddress
	}
	return nil
}

// validLocalPart accepts a dot-atom (RFC 5322 §3.2.3) with UTF-8 allowed
// (RFC 6531 §3.3), at most 64 octets (RFC 5321 §4.5.3.1.1).
func validLocalPart(s string) bool {
	if s == "" || len(s) > 64 || !utf8.ValidString(s) {
		return false
	}
	if s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for _, r := range s {
		if r >= utf8.RuneSelf {
			continue
		}
		if !isAtext(byte(r)) && r != '.' {
			return false
		}
	}
	return true
}

func isAtext(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

// validDomain accepts a host name (RFC 5321 §4.1.2 Domain, RFC 1035 labels,
// UTF-8 labels per RFC 6531) of at most 255 octets, with at least two
// labels and no trailing dot.
func validDomain(s string) bool {
	if len(s) == 0 || len(s) > 255 || !utf8.ValidString(s) {
		return false
	}
	labels := strings.Split(s, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, r := range l {
			ok := r >= utf8.RuneSelf || r == '-' ||
				'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9'
			if !ok {
				return false
			}
		}
	}
	return true
}

// cleanPath reports whether an address from MAIL or RCPT is free of control
// characters. go-smtp keeps a bare CR inside a command line, and such an
// address would otherwise reach the Return-Path header and the relay.
func cleanPath(addr string) bool {
	return !strings.ContainsFunc(addr, unsafeRune)
}

func isNotLocal(err error) bool { return errors.Is(err, accounts.ErrNotLocal) }
