// Package sasl is the server side of the SASL mechanisms all three protocols
// offer: PLAIN (wrapping go-sasl), and LOGIN and CRAM-MD5, which go-sasl has
// only as clients. It knows nothing of any protocol's framing: callers
// decode base64 and handle "*" cancellation, and pass raw responses in.
//
// Errors: a Verifier's error is returned unchanged (wrapped), so callers can
// test errors.Is(err, accounts.ErrAuthFailed); input that does not follow
// the mechanism is ErrMalformed; an authorization identity other than the
// user's own (PLAIN) is ErrAuthzid, which also matches
// accounts.ErrAuthFailed.
package sasl

import (
	"context"
	"errors"
	"fmt"
	"strings"

	gosasl "github.com/emersion/go-sasl"

	"github.com/mailsuite/mailsuite/accounts"
)

// Mechanism names, as advertised.
const (
	Plain   = "PLAIN"
	Login   = "LOGIN"
	CRAMMD5 = "CRAM-MD5"
)

// ErrUnknownMechanism is returned by NewServer for a mechanism we do not offer.
var ErrUnknownMechanism = errors.New("sasl: unknown mechanism")

var (
	// ErrMalformed: the client's response does not follow the mechanism
	// (wrong number of fields, an initial response where none is allowed,
	// a response after the exchange ended, ...). Protocols answer it as a
	// syntax error; it is still a failed attempt for rate limiting.
	ErrMalformed = errors.New("sasl: malformed response")
	// ErrAuthzid: PLAIN named an authorization identity other than the
	// authenticating user; we do not let one user act as another.
	ErrAuthzid = fmt.Errorf("sasl: authorization identity not allowed: %w", accounts.ErrAuthFailed)
)

// Verifier checks credentials; *accounts.Directory satisfies it.
type Verifier interface {
	Authenticate(ctx context.Context, username, password string) (string, error)
	VerifyCRAMMD5(username, challenge, digestHex string) (string, error)
}

// Mechanisms lists the mechanisms NewServer accepts, in the order servers
// should advertise them.
func Mechanisms() []string { return []string{Plain, Login, CRAMMD5} }

// NewServer returns a go-sasl server for mech. hostname goes into the
// CRAM-MD5 challenge. onSuccess is called with the canonical user once the
// exchange succeeds; a failed exchange returns the Verifier's error.
//
// mech is matched case-insensitively. A server is for one exchange and one
// goroutine.
func NewServer(ctx context.Context, mech string, v Verifier, hostname string, onSuccess func(user string)) (gosasl.Server, error) {
	if onSuccess == nil {
		onSuccess = func(string) {}
	}
	switch strings.ToUpper(mech) {
	case Plain:
		return newPlainServer(ctx, v, onSuccess), nil
	case Login:
		return &loginServer{ctx: ctx, v: v, onSuccess: onSuccess}, nil
	case CRAMMD5:
		return &cramServer{v: v, hostname: hostname, onSuccess: onSuccess}, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownMechanism, mech)
}

// errDone is returned for any response after the exchange has ended.
var errDone = fmt.Errorf("%w: exchange already finished", ErrMalformed)
