// Package imapd is the suite's IMAP server: a go-imap v2 imapserver.Session
// over the shared mailstore, speaking IMAP4rev1 (RFC 3501) and IMAP4rev2
// (RFC 9051) with the extensions go-imap's server can parse and the store can
// honour.
//
// It owns the IMAP session state (the per-session view of a selected
// folder's sequence numbers, push of changes made by other sessions and
// protocols, SEARCHRES), the IMAP rendering of messages (envelope, body
// structure and their compact cache encoding kept in the store's cache),
// the mapping of errors to tagged NO/BAD replies, and the listener plumbing
// (implicit TLS, connection limits, per-connection insecure-auth policy).
//
// It does not own accounts, credentials checks (accounts, internal/sasl),
// failure throttling (internal/authlimit), the maildir format, UIDs or
// folder-name safety (mailstore): it asks them.
//
// Invariants:
//   - Never write to the client while holding a store lock: all store calls
//     return before a response is written.
//   - A session's view (UIDs in sequence order) changes only on the
//     session's own goroutine (command or IDLE), so sequence numbers the
//     client knows are never shifted behind its back (RFC 3501 §7.4.1).
package imapd
