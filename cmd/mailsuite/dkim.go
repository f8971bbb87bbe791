package main

// mailsuite dkim: create a domain's DKIM key in the data dir and print the
// DNS record to publish; the relay signs with it from then on.

import (
	"fmt"
	"io"
	"strings"

	"github.com/mailsuite/mailsuite/relay"
)

const dkimUsage = `usage: mailsuite dkim COMMAND DOMAIN [-selector S] [-type rsa|ed25519] [-config FILE | -data DIR]

  generate DOMAIN   create <data>/dkim/DOMAIN.SELECTOR.key and print its TXT record
  show DOMAIN       print the TXT record of an existing key

The selector defaults to [relay] dkim_selector (mail); the key type to rsa
(2048 bits), which every verifier understands.
`

func runDKIM(args []string, stdout, stderr io.Writer) int {
	fs, cfgPath := newFlags("dkim", stderr)
	dataDir := fs.String("data", "", "data directory (instead of reading -config)")
	selector := fs.String("selector", "", "DKIM selector (default: dkim_selector of mail.ini, or mail)")
	keyType := fs.String("type", "rsa", "key type: rsa or ed25519")
	fs.Usage = func() { fmt.Fprint(stderr, dkimUsage) }
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 2 || (pos[0] != "generate" && pos[0] != "show") {
		fmt.Fprint(stderr, dkimUsage)
		return 2
	}
	st, err := loadRelaySettings(*cfgPath, *dataDir)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	sel := *selector
	if sel == "" {
		sel = st.selector
	}
	domain := strings.ToLower(pos[1])
	var record string
	if pos[0] == "generate" {
		record, err = relay.GenerateKeyType(st.dataDir, domain, sel, relay.KeyType(*keyType))
	} else {
		record, err = relay.DKIMRecord(st.dataDir, domain, sel)
	}
	if err != nil {
		fmt.Fprintln(stderr, "mailsuite dkim:", err)
		return 1
	}
	if pos[0] == "generate" {
		fmt.Fprintf(stdout, "Created the DKIM key for %s (selector %s). Publish this DNS record:\n\n", domain, sel)
	}
	fmt.Fprintf(stdout, "%s. IN TXT %s\n", relay.DKIMRecordName(domain, sel), txtStrings(record))
	return 0
}

// txtStrings splits a record into quoted strings of at most 255 bytes,
// the limit of one TXT character-string (RFC 1035 §3.3.14).
func txtStrings(record string) string {
	var parts []string
	for record != "" {
		n := min(len(record), 255)
		parts = append(parts, `"`+record[:n]+`"`)
		record = record[n:]
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return "( " + strings.Join(parts, "\n\t") + " )"
}
