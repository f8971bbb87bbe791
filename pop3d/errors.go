package pop3d

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"

	"github.com/mailsuite/mailsuite/accounts"
	"github.com/mailsuite/mailsuite/mailstore"
)

// Errors a Session returns (wrapped with %w) that the engine turns into
// specific replies. Any other error becomes an internal-error reply with
// the SYS/TEMP response code (SYS/PERM for permission problems).
var (
	// ErrNoSuchMessage: the number is out of range or marked deleted.
	ErrNoSuchMessage = errors.New("pop3d: no such message")
	// ErrAuthFailed: wrong credentials (RFC 3206 [AUTH]).
	ErrAuthFailed = accounts.ErrAuthFailed
	// ErrInUse: the maildrop is locked by another session (RFC 2449 [IN-USE]).
	ErrInUse = mailstore.ErrInUse
)

// replyError is a protocol-level refusal: its text goes to the client as is.
type replyError struct {
	code string // RFC 2449 §8 response code without brackets, or ""
	text string
}

func (e *replyError) Error() string { return e.text }

// protoErr returns a refusal with a response code ("" for none).
func protoErr(code, text string) error { return &replyError{code: code, text: text} }

// errorReply is the one place that turns an error into a POP3 reply line
// (RFC 2449 §8 response codes, RFC 3206 [AUTH] and [SYS/*]). Errors it does
// not know are logged once here, with an ID the client also sees.
func (c *conn) errorReply(err error) string {
	var re *replyError
	switch {
	case errors.As(err, &re):
		if re.code != "" {
			return "-ERR [" + re.code + "] " + re.text
		}
		return "-ERR " + re.text
	case errors.Is(err, ErrNoSuchMessage), errors.Is(err, mailstore.ErrNoSuchMessage):
		return "-ERR no such message"
	case errors.Is(err, accounts.ErrAuthFailed):
		return "-ERR [AUTH] authentication failed"
	case errors.Is(err, mailstore.ErrInUse):
		return "-ERR [IN-USE] maildrop is locked by another session"
	}
	c.errSeq++
	id := fmt.Sprintf("%s-%d", c.id, c.errSeq)
	c.srv.opts.Logger.Error("pop3: internal error", slog.String("id", id),
		slog.String("remote", c.remote.String()), slog.String("user", c.user), slog.Any("err", err))
	if h := c.srv.opts.Hooks.OnError; h != nil {
		h(c.id, err)
	}
	if errors.Is(err, fs.ErrPermission) || errors.Is(err, mailstore.ErrNotPermitted) {
		// RFC 3206 §4: a problem that will not go away by itself.
		return "-ERR [SYS/PERM] internal error (id " + id + ")"
	}
	return "-ERR [SYS/TEMP] internal error (id " + id + ")"
}
