package accounts

import (
	"context"
	"errors"
)

var errUnimplemented = errors.New("accounts: unimplemented")

// Directory is the live account list. All methods are safe for concurrent use.
type Directory struct{}

// New validates cfg and returns a directory holding it.
func New(cfg Config) (*Directory, error) { return nil, errUnimplemented }

// Update validates cfg and, if valid, swaps it in atomically. If it is not
// valid the previous list stays in force and the error (wrapping ErrInvalid)
// says why. Subscribers are told which users vanished or were disabled.
func (d *Directory) Update(cfg Config) error { return errUnimplemented }

// Authenticate checks a login name (the full address) and password. It takes
// the same time whether or not the user exists. It returns the canonical
// address of the user.
func (d *Directory) Authenticate(ctx context.Context, username, password string) (string, error) {
	return "", errUnimplemented
}

// VerifyCRAMMD5 checks a CRAM-MD5 response (RFC 2195): digestHex is the
// lower-case hex HMAC-MD5 of challenge keyed by the password.
func (d *Directory) VerifyCRAMMD5(username, challenge, digestHex string) (string, error) {
	return "", errUnimplemented
}

// Resolve maps a recipient address to the canonical addresses of the users
// who receive it (plus-addressing, aliases, lists, catch-all). It returns
// ErrNotLocal for foreign domains and ErrNoSuchUser for unknown local parts
// and disabled users.
func (d *Directory) Resolve(address string) ([]string, error) { return nil, errUnimplemented }

// IsLocalDomain reports whether domain (any case) is served here.
func (d *Directory) IsLocalDomain(domain string) bool { return false }

// CanSendAs reports whether the authenticated user may use address as the
// envelope sender or From: address (their own address or one of their aliases,
// with or without a +tag).
func (d *Directory) CanSendAs(user, address string) bool { return false }

// Lookup returns the user whose login is address.
func (d *Directory) Lookup(address string) (User, bool) { return User{}, false }

// Users returns all users, sorted by address.
func (d *Directory) Users() []User { return nil }

// Subscribe calls fn after every successful Update with the addresses of
// users that were removed or disabled, so servers can end their sessions.
// The returned func cancels the subscription.
func (d *Directory) Subscribe(fn func(gone []string)) (cancel func()) { return func() {} }
