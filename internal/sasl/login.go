package sasl

import (
	"context"
	"fmt"
)

// loginServer is the server side of LOGIN (draft-murchison-sasl-login-00):
// the server asks "Username:" then "Password:", the client answers each.
// A client may send the username as an initial response (§2.1), as
// go-sasl's client and Outlook do.
type loginServer struct {
	ctx       context.Context
	v         Verifier
	onSuccess func(string)
	state     int // 0 start, 1 asked for username, 2 asked for password, 3 done
	username  string
}

var (
	challengeUsername = []byte("Username:")
	challengePassword = []byte("Password:")
)

func (s *loginServer) Next(response []byte) ([]byte, bool, error) {
	switch s.state {
	case 0:
		// No initial response, or an empty one ("=" in SMTP/IMAP), means
		// the client waits to be asked.
		if len(response) == 0 {
			s.state = 1
			return challengeUsername, false, nil
		}
		s.username = string(response)
		s.state = 2
		return challengePassword, false, nil
	case 1:
		s.username = string(response)
		s.state = 2
		return challengePassword, false, nil
	case 2:
		s.state = 3
		user, err := s.v.Authenticate(s.ctx, s.username, string(response))
		if err != nil {
			return nil, true, fmt.Errorf("sasl: LOGIN: %w", err)
		}
		s.onSuccess(user)
		return nil, true, nil
	}
	return nil, true, errDone
}
