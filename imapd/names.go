package imapd

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/mailsuite/mailsuite/mailstore"
)

// delim is the hierarchy delimiter clients see; it is the store's own.
const delim = '/'

// maxNameLen bounds a mailbox name in octets (UTF-8). Dovecot's limit is
// similar; longer names would not fit a file name once encoded.
const maxNameLen = 200

// checkName rejects mailbox names no client legitimately sends before they
// reach the store (which validates again: this is defence in depth, and it
// lets the client get NO [CANNOT] without a file-system call). go-imap has
// already turned modified UTF-7 into UTF-8 (RFC 3501 §5.1.3) and refused
// invalid UTF-7.
func checkName(name string) error {
	bad := func(why string) error { return fmt.Errorf("%w: %s", errBadName, why) }
	switch {
	case name == "":
		return bad("empty")
	case len(name) > maxNameLen:
		return bad("too long")
	case !utf8.ValidString(name):
		return bad("not UTF-8")
	case strings.HasPrefix(name, string(delim)):
		return bad("absolute")
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || r == '\\' || r == '*' || r == '%' {
			return bad("forbidden character")
		}
	}
	for _, part := range strings.Split(name, string(delim)) {
		switch {
		case part == "":
			return bad("empty level")
		case part == "." || part == "..":
			return bad("dot level")
		case strings.HasPrefix(part, "."):
			return bad("level starts with a dot")
		}
	}
	return nil
}

// canonName strips one trailing delimiter (RFC 3501 §6.3.3: "foo/" creates
// "foo") and spells INBOX in upper case, then checks the result.
func canonName(name string) (string, error) {
	name = strings.TrimSuffix(name, string(delim))
	if strings.EqualFold(name, mailstore.Inbox) {
		name = mailstore.Inbox
	} else if len(name) > len(mailstore.Inbox) && strings.EqualFold(name[:len(mailstore.Inbox)+1], mailstore.Inbox+string(delim)) {
		name = mailstore.Inbox + name[len(mailstore.Inbox):]
	}
	return name, checkName(name)
}
