// Package sasl is the server side of the SASL mechanisms all three protocols
// offer: PLAIN (wrapping go-sasl), and LOGIN and CRAM-MD5, which go-sasl has
// only as clients. It knows nothing of any protocol's framing.
package sasl

import (
	"context"
	"errors"

	gosasl "github.com/emersion/go-sasl"
)

// Mechanism names, as advertised.
const (
	Plain   = "PLAIN"
	Login   = "LOGIN"
	CRAMMD5 = "CRAM-MD5"
)

// ErrUnknownMechanism is returned by NewServer for a mechanism we do not offer.
var ErrUnknownMechanism = errors.New("sasl: unknown mechanism")

// Verifier checks credentials; *accounts.Directory satisfies it.
type Verifier interface {
	Authenticate(ctx context.Context, username, password string) (string, error)
	VerifyCRAMMD5(username, challenge, digestHex string) (string, error)
}

// NewServer returns a go-sasl server for mech. hostname goes into the
// CRAM-MD5 challenge. onSuccess is called with the canonical user once the
// exchange succeeds; a failed exchange returns the Verifier's error.
func NewServer(ctx context.Context, mech string, v Verifier, hostname string, onSuccess func(user string)) (gosasl.Server, error) {
	return nil, ErrUnknownMechanism
}
