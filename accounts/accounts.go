// Package accounts is the suite's one account list: users, their password
// hashes, aliases, distribution lists, catch-alls and the local domains.
//
// It owns credential checks (constant time whether or not the user exists),
// address resolution (case-insensitive, plus-addressing, aliases, lists,
// catch-all) and atomic replacement of the whole list when mail.ini changes.
// It does not read mail.ini: the wiring parses the file and hands a Config
// to New and Update, so this package imports no other package of ours.
package accounts

import (
	"errors"
	"log/slog"
)

// Sentinel errors, wrapped with %w by the functions below.
var (
	// ErrAuthFailed: unknown user, wrong password or disabled account. The
	// three are deliberately indistinguishable to callers that face clients.
	ErrAuthFailed = errors.New("accounts: authentication failed")
	// ErrNoSuchUser: the domain is local but nobody receives this address.
	ErrNoSuchUser = errors.New("accounts: no such user")
	// ErrNotLocal: the address's domain is not one of ours.
	ErrNotLocal = errors.New("accounts: domain is not local")
	// ErrInvalid: a Config failed validation.
	ErrInvalid = errors.New("accounts: invalid configuration")
)

// User is one mailbox owner.
type User struct {
	Address  string   // full address; the login name; compared case-insensitively
	Password string   // "{SCHEME}..." as written by HashPassword ({ARGON2ID}, {BLF-CRYPT}, {PLAIN})
	CRAMMD5  string   // optional "{CRAM-MD5}<64 hex>" HMAC-MD5 precomputed state (Dovecot's format)
	Aliases  []string // extra addresses that deliver to this user and that they may send as
	Quota    int64    // bytes; 0 means unlimited
	Disabled bool     // cannot log in; mail to them is refused
}

// Config is everything the directory holds. Aliases maps an address to
// local users (a distribution list when more than one); a key of the form
// "@domain" is that domain's catch-all.
type Config struct {
	Domains []string
	Users   []User
	Aliases map[string][]string
	Logger  *slog.Logger

	// The fields below are read by New only; Update ignores them.

	// MaxConcurrentHashes bounds password verifications running at once:
	// each Argon2 check at the default cost allocates 64 MiB, so a login
	// storm must queue rather than exhaust memory. Default 2×GOMAXPROCS.
	MaxConcurrentHashes int
	// OnHashWork, if set, is called once for every password hash or
	// CRAM-MD5 computation, with the scheme and its cost parameters. It is
	// a test knob: it shows that unknown users cost the same work as real
	// ones without measuring time.
	OnHashWork func(scheme, cost string)
}

// PlaintextPassword reports whether u's password is stored in the clear
// ({PLAIN} or no scheme at all). It works, but the wiring should warn.
func (u User) PlaintextPassword() bool {
	if u.Password == "" {
		return false
	}
	scheme, _, ok := splitScheme(u.Password)
	return !ok || scheme == SchemePlain
}
