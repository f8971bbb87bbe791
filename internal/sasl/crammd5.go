package sasl

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"strconv"
	"time"
)

// cramServer is the server side of CRAM-MD5 (RFC 2195): the server sends a
// unique challenge in msg-id form, the client answers with its user name, a
// space and the lower-case hex HMAC-MD5 of the challenge keyed by its
// password. The mechanism has no initial response.
type cramServer struct {
	v         Verifier
	hostname  string
	onSuccess func(string)
	challenge string // "" until sent
	done      bool
}

func (s *cramServer) Next(response []byte) ([]byte, bool, error) {
	if s.done {
		return nil, true, errDone
	}
	if s.challenge == "" {
		// RFC 4422 §4: a client-first response to a server-first mechanism
		// is an error. An empty initial response ("=") carries nothing and
		// is treated as none.
		if len(response) > 0 {
			s.done = true
			return nil, true, fmt.Errorf("%w: CRAM-MD5 takes no initial response", ErrMalformed)
		}
		s.challenge = newChallenge(s.hostname, time.Now())
		return []byte(s.challenge), false, nil
	}
	s.done = true
	user, digest, err := parseCRAMResponse(response)
	if err != nil {
		return nil, true, err
	}
	canon, err := s.v.VerifyCRAMMD5(user, s.challenge, digest)
	if err != nil {
		return nil, true, fmt.Errorf("sasl: CRAM-MD5: %w", err)
	}
	s.onSuccess(canon)
	return nil, true, nil
}

// newChallenge returns "<random.unixtime@hostname>" (RFC 2195 §2 asks for
// a globally unique msg-id-like string; the random part makes it
// unpredictable so a recorded response cannot be replayed).
func newChallenge(hostname string, now time.Time) string {
	if hostname == "" {
		hostname = "localhost"
	}
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥1.24)
	return "<" + strconv.FormatUint(binary.BigEndian.Uint64(b[:]), 10) + "." +
		strconv.FormatInt(now.Unix(), 10) + "@" + hostname + ">"
}

// parseCRAMResponse splits "user SP digest" (RFC 2195 §2). The user name
// may itself contain spaces, so the digest is what follows the last one;
// it must be 32 lower-case hex digits.
func parseCRAMResponse(resp []byte) (user, digest string, err error) {
	sp := bytes.LastIndexByte(resp, ' ')
	if sp <= 0 {
		return "", "", fmt.Errorf("%w: CRAM-MD5 response is not \"user digest\"", ErrMalformed)
	}
	d := resp[sp+1:]
	if len(d) != 32 {
		return "", "", fmt.Errorf("%w: CRAM-MD5 digest is not 32 hex digits", ErrMalformed)
	}
	for _, c := range d {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return "", "", fmt.Errorf("%w: CRAM-MD5 digest is not lower-case hex", ErrMalformed)
		}
	}
	return string(resp[:sp]), string(d), nil
}
