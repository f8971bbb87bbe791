package sasl

import (
	"context"
	"errors"
	"testing"
)

// fixedVerifier accepts only u/p (and, for CRAM-MD5, any challenge with
// the digest "0…0"), so fuzzing can reach the success path too.
type fixedVerifier struct{}

var errNo = errors.New("no")

func (fixedVerifier) Authenticate(_ context.Context, u, p string) (string, error) {
	if u == "u" && p == "p" {
		return "u@x", nil
	}
	return "", errNo
}

func (fixedVerifier) VerifyCRAMMD5(u, _, d string) (string, error) {
	if u == "u" && d == "00000000000000000000000000000000" {
		return "u@x", nil
	}
	return "", errNo
}

// fuzzExchange feeds up to three responses (a nil first one when noIR)
// and checks the invariants every mechanism keeps: no panic, onSuccess at
// most once and only on success, and nothing accepted after the end.
func fuzzExchange(t *testing.T, mech string, noIR bool, r0, r1, r2 []byte) {
	successes := 0
	s, err := NewServer(context.Background(), mech, fixedVerifier{}, "h", func(string) { successes++ })
	if err != nil {
		t.Fatal(err)
	}
	if noIR {
		r0 = nil
	}
	ended := false
	for i, r := range [][]byte{r0, r1, r2} {
		_, done, err := s.Next(r)
		if ended {
			if err == nil {
				t.Fatalf("step %d: response accepted after the end", i)
			}
			continue
		}
		if done {
			ended = true
			if (err == nil) != (successes == 1) {
				t.Fatalf("step %d: err=%v but onSuccess called %d times", i, err, successes)
			}
		} else if err != nil {
			t.Fatalf("step %d: error %v without done", i, err)
		}
	}
	if successes > 1 {
		t.Fatalf("onSuccess called %d times", successes)
	}
}

func FuzzPlain(f *testing.F) {
	f.Add(false, []byte("\x00u\x00p"), []byte(nil), []byte(nil))
	f.Add(true, []byte(nil), []byte("u\x00u\x00p"), []byte("x"))
	f.Add(false, []byte("a\x00u\x00p"), []byte(""), []byte(""))
	f.Add(false, []byte("\x00\x00\x00"), []byte(nil), []byte(nil))
	f.Fuzz(func(t *testing.T, noIR bool, r0, r1, r2 []byte) { fuzzExchange(t, Plain, noIR, r0, r1, r2) })
}

func FuzzLogin(f *testing.F) {
	f.Add(false, []byte("u"), []byte("p"), []byte(nil))
	f.Add(true, []byte(nil), []byte("u"), []byte("p"))
	f.Add(false, []byte(""), []byte("\x00"), []byte("\xff"))
	f.Fuzz(func(t *testing.T, noIR bool, r0, r1, r2 []byte) { fuzzExchange(t, Login, noIR, r0, r1, r2) })
}

func FuzzCRAMMD5(f *testing.F) {
	f.Add(true, []byte(nil), []byte("u 00000000000000000000000000000000"), []byte(nil))
	f.Add(false, []byte("u 00000000000000000000000000000000"), []byte(""), []byte(nil))
	f.Add(true, []byte(nil), []byte("u  0000"), []byte("x"))
	f.Fuzz(func(t *testing.T, noIR bool, r0, r1, r2 []byte) { fuzzExchange(t, CRAMMD5, noIR, r0, r1, r2) })
}

func FuzzParseCRAMResponse(f *testing.F) {
	for _, s := range []string{"tim b913a602c7eda7a495b4e6e7334d3890", "a b c 00000000000000000000000000000000", " ", "x ", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, resp []byte) {
		user, digest, err := parseCRAMResponse(resp)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		if user == "" || len(digest) != 32 || user+" "+digest != string(resp) {
			t.Fatalf("parse %q = %q, %q", resp, user, digest)
		}
	})
}
