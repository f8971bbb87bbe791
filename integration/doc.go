// Package integration holds the end-to-end tests of the whole suite: it
// starts mailsuite from a mail.ini in a temp dir (through mailsuite.New, the
// constructor the binary uses, or as the real binary where a process must
// die) on 127.0.0.1:0 ports and drives it with Go clients and with real
// ones (Python's smtplib/poplib/imaplib, swaks, curl, fetchmail, mbsync),
// and has Dovecot's own imap read the tree mailsuite wrote and the other
// way round.
//
// It owns no production code. It proves the project's promise across
// packages: what SMTP accepts, POP3 and IMAP read; nothing acknowledged is
// lost (crashes, full disks, shutdowns); many clients at once agree on what
// exists. Bugs it finds in other packages are shown by failing tests here
// and fixed in their own package.
//
// What the tests need: the go tool (the binary is built once per run into
// a temp dir); the real clients and Dovecot's imap (dovecot-imapd), which
// .ci/run installs: a missing one skips its test, except with CI=true,
// where it fails; root to mount a small tmpfs for the disk-full test (it
// skips without, and the injected-failure test still runs). Everything
// listens on and talks to 127.0.0.1 only; every loop is bounded in count
// and time; the package runs in well under a minute with -race.
package integration
