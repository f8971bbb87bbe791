// Package pop3d is the suite's POP3 server (RFC 1939), written on
// net/textproto because no maintained Go library serves POP3.
//
// It owns the protocol: the listener loop, the per-connection state machine
// (AUTHORIZATION, TRANSACTION, UPDATE), CAPA (RFC 2449), STLS (RFC 2595),
// AUTH (RFC 5034: PLAIN, LOGIN, CRAM-MD5 through internal/sasl), extended
// response codes (RFC 2449 §8, RFC 3206), line and command limits, timeouts
// and the embedder hooks. The shape follows go-imap v2's imapserver: a Server
// that owns listeners, a Session interface grouped by protocol state, and an
// optional SASL interface.
//
// It does not own messages or accounts: the maildrop is the user's INBOX in
// the shared mailstore (maildrop.go holds the mailstore-backed Session), and
// credentials are checked by the shared accounts directory. Deletions happen
// only at QUIT, through mailstore's durable Expunge; a dropped connection
// deletes nothing.
//
// APOP (RFC 1939 §7) is deliberately not offered: it needs the plaintext
// password (or an unsalted MD5 of it) on the server, and MD5 challenge
// responses can be brute-forced offline; TLS with USER/PASS or SASL is the
// safe replacement.
package pop3d
