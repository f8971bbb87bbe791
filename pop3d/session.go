package pop3d

import (
	"context"
	"io"
	"net"

	gosasl "github.com/emersion/go-sasl"
)

// ConnInfo describes the connection a Session serves.
type ConnInfo struct {
	ID     string // session ID, as passed to hooks and logged
	Remote net.Addr
}

// Message is one message of the maildrop as the client sees it.
type Message struct {
	Number int    // 1-based message number (RFC 1939 §5), fixed for the session
	Size   int64  // exact octets of RETR, CRLF line endings, before dot-stuffing
	UID    string // unique-id (RFC 1939 §7 UIDL): 1 to 70 chars 0x21..0x7E
}

// Session is the storage side of one POP3 connection, grouped by the RFC
// 1939 states. The engine guarantees the order: AUTHORIZATION methods until
// Open succeeds, then TRANSACTION methods, then Update (only after QUIT in
// TRANSACTION) and finally Close, exactly once, however the connection ends.
// Message numbers are checked by the session: out of range or deleted
// numbers return an error wrapping ErrNoSuchMessage.
type Session interface {
	// AUTHORIZATION state (RFC 1939 §4, §7 USER/PASS).

	// Login verifies a user name and password and returns the canonical
	// user. It does not open the maildrop.
	Login(ctx context.Context, username, password string) (user string, err error)
	// Open locks the maildrop of the user authenticated by Login or SASL
	// and takes its snapshot (RFC 1939 §8: exclusive access). An error
	// wrapping mailstore.ErrInUse becomes "-ERR [IN-USE]".
	Open(ctx context.Context, user string) error

	// TRANSACTION state (RFC 1939 §5).

	// Stat returns the count and total size of messages not marked deleted.
	Stat() (count int, size int64, err error)
	// List returns the messages not marked deleted, in number order.
	List() ([]Message, error)
	// Message returns message n (for LIST n, UIDL n and the RETR +OK line).
	Message(n int) (Message, error)
	// Retr opens message n as stored (any line endings); the engine
	// converts it to CRLF and dot-stuffs it. Reading it to the end counts
	// as a retrieval (the session may then mark it \Seen).
	Retr(n int) (io.ReadCloser, error)
	// Top opens message n for TOP; it does not count as a retrieval.
	Top(n int) (io.ReadCloser, error)
	// Dele marks message n deleted; it stays until Update.
	Dele(n int) error
	// Rset unmarks all messages.
	Rset() error

	// UPDATE state (RFC 1939 §6).

	// Update removes the messages marked deleted, durably, and returns how
	// many it removed. It is called only for QUIT in TRANSACTION state.
	Update(ctx context.Context) (deleted int, err error)
	// Close ends the session and releases the maildrop. Without a prior
	// Update nothing is deleted.
	Close() error
}

// SessionSASL is implemented by sessions that offer AUTH (RFC 5034), as in
// go-imap's and go-smtp's servers.
type SessionSASL interface {
	// AuthenticateMechanisms lists the mechanisms offered, in order of
	// preference. The engine hides the plaintext ones (PLAIN, LOGIN) where
	// plaintext passwords are not allowed.
	AuthenticateMechanisms() []string
	// Authenticate starts an exchange for mech. When the exchange finishes
	// without error, done reports the canonical user.
	Authenticate(ctx context.Context, mech string, done func(user string)) (gosasl.Server, error)
}
