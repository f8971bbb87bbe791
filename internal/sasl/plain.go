package sasl

import (
	"context"
	"fmt"
	"strings"

	gosasl "github.com/emersion/go-sasl"
)

// plainServer wraps go-sasl's PLAIN server (RFC 4616) to enforce our
// authorization rule and to tell malformed input from failed credentials:
// go-sasl reports both as plain errors.
type plainServer struct {
	inner  gosasl.Server
	called bool // the authenticator ran: its error is the verdict
}

func newPlainServer(ctx context.Context, v Verifier, onSuccess func(string)) *plainServer {
	s := &plainServer{}
	s.inner = gosasl.NewPlainServer(func(identity, username, password string) error {
		s.called = true
		// RFC 4616 §2: an empty authzid means "act as authcid". Any other
		// identity would be a proxy login, which we do not offer.
		if identity != "" && !strings.EqualFold(identity, username) {
			return ErrAuthzid
		}
		user, err := v.Authenticate(ctx, username, password)
		if err != nil {
			return fmt.Errorf("sasl: PLAIN: %w", err)
		}
		onSuccess(user)
		return nil
	})
	return s
}

func (s *plainServer) Next(response []byte) ([]byte, bool, error) {
	if s.called {
		return nil, true, errDone
	}
	challenge, done, err := s.inner.Next(response)
	if err != nil && !s.called {
		// RFC 4616 §2: message = [authzid] NUL authcid NUL passwd.
		return nil, true, fmt.Errorf("%w: PLAIN: %v", ErrMalformed, err)
	}
	return challenge, done, err
}
