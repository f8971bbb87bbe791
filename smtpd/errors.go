package smtpd

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/emersion/go-smtp"

	"github.com/mailsuite/mailsuite/accounts"
	"github.com/mailsuite/mailsuite/mailstore"
)

// Replies smtpd gives of its own accord. go-smtp sends an *smtp.SMTPError's
// code and text only when it gets the bare pointer (a type assertion, not
// errors.As), so every session method returns one of these or the result
// of reply.
var (
	errAuthRequired   = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}
	errTLSRequired    = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Must issue a STARTTLS command first"}
	errEncryptionReq  = &smtp.SMTPError{Code: 538, EnhancedCode: smtp.EnhancedCode{5, 7, 11}, Message: "Encryption required for requested authentication mechanism"}
	errAuthNotOffered = &smtp.SMTPError{Code: 503, EnhancedCode: smtp.EnhancedCode{5, 5, 1}, Message: "AUTH not available on this port"}
	errAuthThrottled  = &smtp.SMTPError{Code: 454, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Too many authentication failures, try again later"}
	errNotOwnSender   = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Sender address not owned by authenticated user"}
	errNotOwnFrom     = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "From: header address not owned by authenticated user"}
	errBadFrom        = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "Message needs exactly one valid From: header"}
	errRelayDenied    = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Relaying denied"}
	errNoRelay        = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Relaying not available: no outbound queue configured"}
	errBadSender      = &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 1, 7}, Message: "Bad sender address syntax"}
	errBadAddress     = &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 1, 3}, Message: "Bad address syntax"}
	errBareLineEnd    = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "Bare CR or LF in message: lines must end with CRLF"}
	errLineTooLong    = &smtp.SMTPError{Code: 500, EnhancedCode: smtp.EnhancedCode{5, 4, 0}, Message: "Line too long"}
	errDataAborted    = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 4, 0}, Message: "Message transfer aborted"}
	errDataTimeout    = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: "Timeout reading message data"}
	errNoSuchUser     = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user here"}
	errMailboxFull    = &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "Mailbox full"}
	errAuthFailed     = &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Authentication credentials invalid"}
	errUnavailable    = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Service not available, closing channel"}
	errRejected       = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Rejected"}
)

// reply is the one place an error becomes an SMTP reply. Known conditions
// get their code; anything else (a full disk: 452 4.3.1) is a temporary
// failure that names id, so
// the log line (written by the caller, once) can be found. It never puts an
// internal error's text on the wire.
func reply(err error, id string) (r *smtp.SMTPError, known bool) {
	var se *smtp.SMTPError
	switch {
	case errors.As(err, &se) && se.Code >= 400 && se.Code <= 599:
		return &smtp.SMTPError{Code: se.Code, EnhancedCode: se.EnhancedCode, Message: se.Message}, true
	case se != nil: // a hook's "error" with a success code must not pass as success
		return errRejected, true
	case errors.Is(err, ErrRejected):
		return errRejected, true
	case errors.Is(err, accounts.ErrNoSuchUser):
		return errNoSuchUser, true
	case errors.Is(err, accounts.ErrNotLocal):
		return errRelayDenied, true
	case errors.Is(err, accounts.ErrAuthFailed):
		return errAuthFailed, true
	case errors.Is(err, mailstore.ErrQuota):
		return errMailboxFull, true
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		// A full disk (or a file-system quota): RFC 5321's 452 and RFC
		// 3463's "mail system full", still temporary, still logged.
		return &smtp.SMTPError{
			Code:         452,
			EnhancedCode: smtp.EnhancedCode{4, 3, 1},
			Message:      fmt.Sprintf("Insufficient system storage, please try again later (id %s)", id),
		}, false
	}
	return &smtp.SMTPError{
		Code:         451,
		EnhancedCode: smtp.EnhancedCode{4, 3, 0},
		Message:      fmt.Sprintf("Temporary failure, please try again later (id %s)", id),
	}, false
}

// replyLine formats r as go-smtp writes its last line (for OnReply).
func replyLine(r *smtp.SMTPError) string {
	if r.EnhancedCode == smtp.NoEnhancedCode || r.EnhancedCode == smtp.EnhancedCodeNotSet {
		return fmt.Sprintf("%d %s", r.Code, r.Message)
	}
	ec := r.EnhancedCode
	return fmt.Sprintf("%d %d.%d.%d %s", r.Code, ec[0], ec[1], ec[2], r.Message)
}
