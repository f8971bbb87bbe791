// Package relay is the suite's outbound mail queue: it accepts messages for
// remote recipients, keeps them durably in <data>/queue/, and delivers them
// by MX (or through a smarthost), retrying with back-off and returning an
// RFC 3464 delivery status notification to the sender when delivery fails.
// It DKIM-signs outbound mail for local domains that have a key in
// <data>/dkim/.
//
// It owns: the queue files (message + envelope per queued message, written
// with internal/atomicfile), the per-message lock files that let the admin
// CLI edit the queue while a server runs, the delivery workers, MX
// resolution, the SMTP client conversation, DSN generation and DKIM keys.
//
// It does not own: local delivery (Options.DeliverLocal, provided by the
// wiring, stores bounces for local senders), the account list (local
// domains come in through Options), or accepting mail from clients (smtpd
// calls Enqueue). It imports no front-end package.
//
// Crash safety: Enqueue returns only once both files are fsynced and
// renamed into place. A worker saves each recipient's state after every
// SMTP transaction and before starting the next, so a restart never sends
// again to a recipient whose server already accepted the message (except in
// the unavoidable window between the remote's 250 and our fsync, RFC 1047).
// If that save fails (disk full), the outcome is kept in memory and saved
// before the message is tried again.
//
// Foreign input is bounded: a remote's reply text is cleaned before it is
// stored, one SMTP session reads at most 1 MiB and every write has a
// deadline, and one attempt dials at most 5 addresses.
package relay
