package imapd

import (
	"errors"
	"io/fs"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/mailsuite/mailsuite/accounts"
	"github.com/mailsuite/mailsuite/mailstore"
)

// Errors of this package's own making; reply maps them like the store's.
var (
	errReadOnly      = errors.New("imapd: mailbox is read-only")
	errBadName       = errors.New("imapd: invalid mailbox name")
	errNoSelect      = errors.New("imapd: no mailbox selected")
	errThrottled     = errors.New("imapd: too many authentication failures")
	errExpungeIssued = errors.New("imapd: some messages were expunged meanwhile")
	errShuttingDown  = errors.New("imapd: server shutting down")
)

// reply is the one function that turns an error into the client's tagged
// reply (RFC 5530 response codes). op names the command for the log and
// picks TRYCREATE for a missing APPEND/COPY/MOVE target (RFC 3501 §6.3.11).
// Unknown errors become NO [UNAVAILABLE] with an ID; their cause is logged
// once here, with the session, user and remote address.
func (sess *session) reply(op string, err error) error {
	if err == nil {
		return nil
	}
	var ie *imap.Error
	if errors.As(err, &ie) {
		return ie
	}
	no := func(code imap.ResponseCode, text string) error {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: code, Text: text}
	}
	switch {
	case errors.Is(err, mailstore.ErrNoSuchFolder):
		if op == "append" || op == "copy" || op == "move" {
			return no(imap.ResponseCodeTryCreate, "Mailbox doesn't exist")
		}
		return no(imap.ResponseCodeNonExistent, "Mailbox doesn't exist")
	case errors.Is(err, mailstore.ErrFolderExists):
		return no(imap.ResponseCodeAlreadyExists, "Mailbox already exists")
	case errors.Is(err, mailstore.ErrBadUser):
		return no(imap.ResponseCodeCannot, "Invalid user name")
	case errors.Is(err, mailstore.ErrBadFolderName), errors.Is(err, errBadName):
		return no(imap.ResponseCodeCannot, "Invalid mailbox name")
	case errors.Is(err, mailstore.ErrQuota):
		return no(imap.ResponseCodeOverQuota, "Quota exceeded")
	case errors.Is(err, mailstore.ErrNotPermitted):
		return no(imap.ResponseCodeCannot, "Operation not permitted on this mailbox")
	case errors.Is(err, mailstore.ErrInUse):
		return no(imap.ResponseCodeInUse, "Mailbox is in use, try again later")
	case errors.Is(err, mailstore.ErrNoSuchMessage), errors.Is(err, errExpungeIssued), errors.Is(err, fs.ErrNotExist):
		return no("EXPUNGEISSUED", "Some of the requested messages no longer exist")
	case errors.Is(err, errReadOnly):
		return no(imap.ResponseCodeCannot, "Mailbox is read-only")
	case errors.Is(err, errNoSelect):
		return &imap.Error{Type: imap.StatusResponseTypeBad, Code: imap.ResponseCodeClientBug, Text: "No mailbox selected"}
	case errors.Is(err, accounts.ErrAuthFailed):
		return imapserver.ErrAuthFailed
	case errors.Is(err, errThrottled):
		return no(imap.ResponseCodeUnavailable, "Too many failed attempts, try again later")
	case errors.Is(err, mailstore.ErrClosed), errors.Is(err, errShuttingDown):
		return no(imap.ResponseCodeUnavailable, "Server shutting down, try again later")
	}
	id := newID()
	sess.srv.log.Error("internal error", "session", sess.id, "op", op, "user", sess.userName(),
		"remote", sess.remote.String(), "id", id, "err", err)
	if h := sess.srv.opts.Hooks.OnError; h != nil {
		h(sess.id, err)
	}
	return no(imap.ResponseCodeUnavailable, "Internal error, try again later (ID "+id+")")
}
