// Package integration holds the end-to-end tests of the whole suite: it
// starts mailsuite from a mail.ini in a temp dir (through mailsuite.New, the
// constructor the binary uses, or the real binary where a process must die)
// on 127.0.0.1:0 ports and drives it with Go clients and with real ones
// (Python's smtplib/poplib/imaplib, swaks, curl, fetchmail, mbsync).
//
// It owns no production code. It proves the project's promise across
// packages: what SMTP accepts, POP3 and IMAP read; nothing acknowledged is
// lost (crashes, full disks, shutdowns); many clients at once agree on what
// exists. Bugs it finds in other packages are shown by failing tests here
// and fixed in their own package.
package integration
