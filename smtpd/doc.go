// Package smtpd is the suite's SMTP server, built on github.com/emersion/go-smtp.
//
// It owns the SMTP side of mail intake in two roles (Options.Role):
//
//   - RoleMX (port 25) accepts mail for local recipients (users, aliases,
//     lists, catch-all, as accounts.Directory.Resolve says) from anyone and
//     refuses every other recipient with 550 5.7.1, unless the client's IP is
//     in Options.TrustedNetworks. It offers no AUTH.
//   - RoleSubmission (587 STARTTLS, 465 implicit TLS) requires AUTH before
//     MAIL (530 5.7.0), lets the user use as MAIL FROM and in the From:
//     header only addresses accounts.Directory.CanSendAs allows (else 550
//     5.7.1), delivers local recipients to the store and hands remote ones to
//     Options.Relay.
//
// It does not own the store (mailstore), the account list (accounts), the
// outbound queue (an Options.Relay the wiring supplies), SASL (internal/sasl)
// or the auth throttle (internal/authlimit); it does not read mail.ini.
//
// # Delivery
//
// Mail for local users streams into one mailstore.Delivery as it arrives
// and is committed to every local user at once (one fsynced file, hard
// links, all or nothing). A whole copy is held in memory (at most
// MaxMessageBytes) only when Hooks.OnMessage is set or there are remote
// recipients, since those need the message after it has been read. The
// final 250 is sent only after the commit returned nil and, for remote
// recipients, Relay.Enqueue returned nil.
//
// With both local and remote recipients, the local commit happens first and
// the relay enqueue second. If the enqueue then fails, the client is told
// 451 and retries, which duplicates the message in our own mailboxes only;
// the other order would, after a failed commit, send a duplicate to the
// outside world, which cannot be recalled. Any failure of ours is answered
// 451 4.3.0 (452 4.3.1 when the disk or a file-system quota is full) with
// the message ID that the one log line about it carries.
//
// Remote recipients with no Relay configured are refused at RCPT with 550
// 5.7.1 (permanent: it is a configuration state, and a temporary code would
// only make clients retry for days).
//
// # SMTP smuggling
//
// go-smtp v0.25.1 ends DATA only at <CRLF>.<CRLF>; a bare LF or bare CR never
// ends a message (tested in smuggling_test.go). It does pass bare LF and bare
// CR through as message data, which a downstream server might read as a line
// end. smtpd therefore rejects any message containing a bare CR or a bare LF
// with 550 5.6.0 (RFC 5321 §2.3.8: lines end with CRLF only), in DATA and
// BDAT alike, as Postfix's smtpd_forbid_bare_newline=reject does. One case
// cannot be refused because go-smtp hides it: its dot-unstuffing drops a
// "." at the start of a line together with a CR that follows it, so
// "<CRLF>.<CR>X" arrives as "<CRLF>X". That message is accepted as one
// message with proper line ends; nothing in it can end data downstream.
//
// # Hooks
//
// Options.Hooks are plain funcs; a nil hook costs nothing. go-smtp has no
// per-command callback, so OnCommand and OnReply are fired from the session
// callbacks it offers: EHLO/HELO (reported as "EHLO <domain>", once per TLS
// state, since the library calls us only for the first), STARTTLS (inferred
// from a new session on a connection that turned TLS), AUTH <mechanism>
// (never the payload), MAIL, RCPT, DATA or BDAT, and RSET (also reported when
// a repeated EHLO reset the transaction). NOOP, VRFY, QUIT and syntax errors
// are answered inside go-smtp without a callback; the end of a connection is
// reported by OnClose.
//
// Without a Directory the server is a standalone receiver: every recipient
// that Hooks.OnRcptTo does not reject is accepted, and Hooks.OnMessage is the
// only destination (see Example).
package smtpd
