package accounts

import (
	"strings"
	"unicode/utf8"
)

// Address handling. Invariants: every address stored in a Directory is in
// canonical form (lower-case local part and domain), so lookups are plain
// map reads. Anything that is not a simple dot-atom local part (RFC 5322
// §3.2.3) is refused rather than interpreted: quoted local parts, comments
// and source routes never name a mailbox here.

const (
	maxLocalLen  = 64  // RFC 5321 §4.5.3.1.1
	maxDomainLen = 255 // RFC 5321 §4.5.3.1.2
)

// canonical returns the lower-case form of address split into local part
// and domain, or ok=false if it is not an address this package accepts.
func canonical(address string) (local, domain string, ok bool) {
	at := strings.LastIndexByte(address, '@')
	if at <= 0 || at == len(address)-1 {
		return "", "", false
	}
	// Lower-case first, then check: case mapping can change a UTF-8
	// string's length, and the canonical form is what must be valid.
	local = strings.ToLower(address[:at])
	if !validLocal(local) {
		return "", "", false
	}
	domain, ok = canonicalDomain(address[at+1:])
	if !ok {
		return "", "", false
	}
	return local, domain, true
}

// CanonicalAddress returns address in the form the Directory stores and
// returns (lower-case local part and domain), or ok=false if it is not a
// plain dot-atom local part @ a domain name, which this package never
// treats as a mailbox. The CLI and protocol servers can use it to check
// and normalise addresses the same way.
func CanonicalAddress(address string) (canonical string, ok bool) {
	return canonicalAddress(address)
}

// canonicalAddress is canonical joined back together.
func canonicalAddress(address string) (string, bool) {
	local, domain, ok := canonical(address)
	if !ok {
		return "", false
	}
	return local + "@" + domain, true
}

// canonicalDomain lower-cases a domain name and checks it is a sequence of
// LDH labels (RFC 1035 §2.3.1) or UTF-8 labels (RFC 6531 allows U-labels).
// Address literals ([192.0.2.1]) are not local domains here.
func canonicalDomain(domain string) (string, bool) {
	if domain == "" || len(domain) > maxDomainLen || !utf8.ValidString(domain) {
		return "", false
	}
	domain = strings.ToLower(domain)
	for label := range strings.SplitSeq(domain, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return "", false
		}
		for _, r := range label {
			switch {
			case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-':
			case r >= 0x80 && r != utf8.RuneError:
			default:
				return "", false
			}
		}
	}
	return domain, true
}

// validLocal accepts an RFC 5322 dot-atom (atext and single inner dots),
// plus UTF-8 as RFC 6531 §3.3 allows.
func validLocal(local string) bool {
	if local == "" || len(local) > maxLocalLen || !utf8.ValidString(local) {
		return false
	}
	if local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, "..") {
		return false
	}
	for _, r := range local {
		if r >= 0x80 {
			if r == utf8.RuneError || r < 0xa0 { // C1 controls and invalid
				return false
			}
			continue
		}
		if !isAtext(byte(r)) && r != '.' {
			return false
		}
	}
	return true
}

// isAtext reports whether c is RFC 5322 §3.2.3 atext.
func isAtext(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

// stripTag removes a +tag from a canonical address: "bob+news@x" → "bob@x".
// It returns ok=false when there is no tag or nothing is left before it.
func stripTag(address string) (string, bool) {
	at := strings.LastIndexByte(address, '@')
	plus := strings.IndexByte(address[:at], '+')
	if plus <= 0 {
		return "", false
	}
	return address[:plus] + address[at:], true
}

// domainOf returns the part after the last '@' of a canonical address.
func domainOf(address string) string {
	return address[strings.LastIndexByte(address, '@')+1:]
}
