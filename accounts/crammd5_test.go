package accounts

import (
	"crypto/hmac"
	"crypto/md5"
	"encoding/hex"
	"strings"
	"testing"
)

// RFC 2195 §2 example: user tim, password tanstaaftanstaaf.
func TestCRAMMD5RFC2195(t *testing.T) {
	st, err := parseCRAMSecret(CRAMMD5Secret("tanstaaftanstaaf"))
	if err != nil {
		t.Fatal(err)
	}
	const challenge = "<1896.697170952@postoffice.reston.mci.net>"
	const want = "b913a602c7eda7a495b4e6e7334d3890"
	if got := hex.EncodeToString(st.digest(challenge)); got != want {
		t.Fatalf("digest = %s, want %s", got, want)
	}
	if !st.verify(challenge, want) || !st.verify(challenge, strings.ToUpper(want)) {
		t.Fatal("RFC 2195 response rejected")
	}
	for _, bad := range []string{"", "b913a602c7eda7a495b4e6e7334d389", "b913a602c7eda7a495b4e6e7334d3891", "zz", want + "00"} {
		if st.verify(challenge, bad) {
			t.Errorf("response %q accepted", bad)
		}
	}
}

// A secret as written by Dovecot's "doveadm pw -s CRAM-MD5" for the password
// "password" (the same value appears in several public projects' fixtures).
// It pins the word order (outer state first) and byte order (little-endian).
func TestCRAMMD5SecretMatchesDovecot(t *testing.T) {
	const dovecot = "{CRAM-MD5}9186d855e11eba527a7a52ca82b313e180d62234f0acc9051b527243d41e2740"
	if got := CRAMMD5Secret("password"); got != dovecot {
		t.Fatalf("CRAMMD5Secret(\"password\") = %s, want %s", got, dovecot)
	}
}

// The state shortcut must equal crypto/hmac for every key length, including
// keys longer than a block (RFC 2104 §2 hashes those first).
func TestCRAMMD5MatchesHMAC(t *testing.T) {
	for _, key := range []string{"", "k", strings.Repeat("x", 63), strings.Repeat("y", 64), strings.Repeat("z", 65), strings.Repeat("päss", 40)} {
		st, err := parseCRAMSecret(CRAMMD5Secret(key))
		if err != nil {
			t.Fatal(err)
		}
		for _, ch := range []string{"", "<1.2@h>", strings.Repeat("c", 200)} {
			m := hmac.New(md5.New, []byte(key))
			m.Write([]byte(ch))
			if want, got := m.Sum(nil), st.digest(ch); !hmac.Equal(want, got) {
				t.Fatalf("key len %d challenge %q: %x, want %x", len(key), ch, got, want)
			}
		}
	}
}

func TestParseCRAMSecretRejects(t *testing.T) {
	for _, s := range []string{
		"", "{CRAM-MD5}", "9186d855e11eba527a7a52ca82b313e180d62234f0acc9051b527243d41e2740",
		"{HMAC-MD5X}9186d855e11eba527a7a52ca82b313e180d62234f0acc9051b527243d41e2740",
		"{CRAM-MD5}9186d855e11eba527a7a52ca82b313e180d62234f0acc9051b527243d41e274",
		"{CRAM-MD5}9186d855e11eba527a7a52ca82b313e180d62234f0acc9051b527243d41e274g",
	} {
		if _, err := parseCRAMSecret(s); err == nil {
			t.Errorf("parseCRAMSecret(%q) accepted", s)
		}
	}
}
