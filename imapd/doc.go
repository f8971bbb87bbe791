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
// Capabilities advertised (go-imap adds some by connection state):
// IMAP4rev1, IMAP4rev2, SASL-IR, LITERAL-, STARTTLS (before TLS, when
// offered), LOGINDISABLED (before TLS) or AUTH=PLAIN AUTH=LOGIN
// AUTH=CRAM-MD5; once authenticated also IDLE, UNSELECT, ENABLE,
// UTF8=ACCEPT, NAMESPACE, UIDPLUS, ESEARCH, SEARCHRES, LIST-EXTENDED,
// LIST-STATUS, MOVE, STATUS=SIZE, BINARY, CHILDREN, SPECIAL-USE,
// CREATE-SPECIAL-USE, LITERAL+ and APPENDLIMIT=n.
//
// Not offered, because go-imap v2.0.0-beta.8's server does not parse the
// commands or modifiers (they cannot be added from a Session): ID, CONDSTORE
// and QRESYNC (no MODSEQ/CHANGEDSINCE/VANISHED; the store has no modseqs
// either), QUOTA (no GETQUOTA/GETQUOTAROOT), SORT, THREAD, COMPRESS=DEFLATE.
// UNAUTHENTICATE is left out on purpose (clients do not use it).
//
// Invariants:
//   - Never write to the client while holding a store lock: all store calls
//     return before a response is written.
//   - A session's view (UIDs in sequence order) changes only on the
//     session's own goroutine (command or IDLE), so sequence numbers the
//     client knows are never shifted behind its back (RFC 3501 §7.4.1).
package imapd
