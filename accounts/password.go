package accounts

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Stored password formats, with Dovecot's scheme prefixes so hashes move
// between the two (doc.dovecot.org, "Password Schemes"):
//
//	{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$<salt>$<hash>   (also {ARGON2I})
//	{BLF-CRYPT}$2y$10$...                                     (bcrypt; $2a/$2b too)
//	{PLAIN}secret, or a bare value without a {SCHEME}          (plaintext, warned about)
//
// Argon2 salt and hash are unpadded standard base64, as libsodium (which
// Dovecot uses) writes them. Verification always uses the parameters in the
// stored string; HashOptions only choose what new hashes cost.

// Scheme names as they appear between the braces.
const (
	SchemeArgon2ID = "ARGON2ID"
	SchemeArgon2I  = "ARGON2I"
	SchemeBcrypt   = "BLF-CRYPT"
	SchemePlain    = "PLAIN"
)

// HashOptions choose the cost of new hashes. Zero fields take the defaults,
// which match libsodium's interactive Argon2id limits as Dovecot emits them
// (m=65536 KiB, p=1) with t=3, and bcrypt cost 10.
type HashOptions struct {
	Scheme     string // SchemeArgon2ID (default) or SchemeBcrypt
	Memory     uint32 // argon2 memory in KiB
	Time       uint32 // argon2 passes
	Threads    uint8  // argon2 parallelism
	BcryptCost int
}

const (
	defaultArgonMemory  = 64 * 1024
	defaultArgonTime    = 3
	defaultArgonThreads = 1
	argonSaltLen        = 16 // crypto_pwhash_SALTBYTES
	argonKeyLen         = 32

	// Limits on parameters read from a stored hash, so a typo in mail.ini
	// cannot make every login allocate gigabytes or spin for minutes.
	maxArgonMemory = 1 << 20 // 1 GiB in KiB
	maxArgonTime   = 64
	maxArgonKeyLen = 256
)

// HashPassword returns an "{ARGON2ID}$argon2id$v=19$m=...,t=...,p=...$salt$hash"
// string, the format Dovecot's doveadm pw writes.
func HashPassword(password string) (string, error) {
	return HashPasswordWith(password, HashOptions{})
}

// HashPasswordWith is HashPassword with a chosen scheme and cost. Tests and
// benchmarks use it with cheap parameters; production uses the defaults.
func HashPasswordWith(password string, opts HashOptions) (string, error) {
	switch opts.Scheme {
	case "", SchemeArgon2ID:
		m, t, p := opts.Memory, opts.Time, opts.Threads
		if m == 0 {
			m = defaultArgonMemory
		}
		if t == 0 {
			t = defaultArgonTime
		}
		if p == 0 {
			p = defaultArgonThreads
		}
		if m > maxArgonMemory || t > maxArgonTime || m < 8*uint32(p) {
			return "", fmt.Errorf("accounts: hash password: argon2 parameters m=%d,t=%d,p=%d out of range", m, t, p)
		}
		salt := make([]byte, argonSaltLen)
		if _, err := rand.Read(salt); err != nil {
			return "", fmt.Errorf("accounts: hash password: %w", err)
		}
		key := argon2.IDKey([]byte(password), salt, t, m, p, argonKeyLen)
		return formatArgon2(SchemeArgon2ID, m, t, p, salt, key), nil
	case SchemeBcrypt:
		cost := opts.BcryptCost
		if cost == 0 {
			cost = bcrypt.DefaultCost
		}
		h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
		if err != nil {
			return "", fmt.Errorf("accounts: hash password: %w", err)
		}
		return "{" + SchemeBcrypt + "}" + string(h), nil
	default:
		return "", fmt.Errorf("accounts: hash password: unsupported scheme %q", opts.Scheme)
	}
}

func formatArgon2(scheme string, m, t uint32, p uint8, salt, key []byte) string {
	variant := "argon2id"
	if scheme == SchemeArgon2I {
		variant = "argon2i"
	}
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("{%s}$%s$v=%d$m=%d,t=%d,p=%d$%s$%s",
		scheme, variant, argon2.Version, m, t, p, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// passwordHash is a parsed stored password, ready to verify.
type passwordHash struct {
	scheme string // one of the Scheme constants
	cost   string // scheme parameters ("m=65536,t=3,p=1", "cost=10", ""), for the work hook

	plain []byte // SchemePlain

	// argon2
	m, t      uint32
	p         uint8
	salt, key []byte

	bcrypt []byte // the whole "$2y$..." string
}

var errBadHash = errors.New("malformed password hash")

// parsePassword parses a stored password. A value without a leading
// "{SCHEME}" is a plaintext password.
func parsePassword(stored string) (*passwordHash, error) {
	scheme, rest, ok := splitScheme(stored)
	if !ok {
		return &passwordHash{scheme: SchemePlain, plain: []byte(stored)}, nil
	}
	switch scheme {
	case SchemePlain:
		return &passwordHash{scheme: SchemePlain, plain: []byte(rest)}, nil
	case SchemeArgon2ID, SchemeArgon2I:
		return parseArgon2(scheme, rest)
	case SchemeBcrypt:
		// "$2a$", "$2b$" or "$2y$", two-digit cost, 22+31 characters.
		if len(rest) != 60 || rest[:2] != "$2" || !strings.ContainsRune("aby", rune(rest[2])) || rest[3] != '$' {
			return nil, fmt.Errorf("{%s}: %w", scheme, errBadHash)
		}
		cost, err := bcrypt.Cost([]byte(rest))
		if err != nil {
			return nil, fmt.Errorf("{%s}: %w", scheme, errBadHash)
		}
		return &passwordHash{scheme: scheme, cost: "cost=" + strconv.Itoa(cost), bcrypt: []byte(rest)}, nil
	default:
		return nil, fmt.Errorf("unsupported password scheme {%s}", scheme)
	}
}

// splitScheme splits "{SCHEME}rest". Scheme names are case-insensitive in
// Dovecot; we upper-case them.
func splitScheme(s string) (scheme, rest string, ok bool) {
	if !strings.HasPrefix(s, "{") {
		return "", s, false
	}
	end := strings.IndexByte(s, '}')
	if end < 2 {
		return "", s, false
	}
	return strings.ToUpper(s[1:end]), s[end+1:], true
}

// parseArgon2 parses the PHC string "$argon2id$v=19$m=..,t=..,p=..$salt$hash".
func parseArgon2(scheme, s string) (*passwordHash, error) {
	bad := fmt.Errorf("{%s}: %w", scheme, errBadHash)
	f := strings.Split(s, "$")
	want := "argon2id"
	if scheme == SchemeArgon2I {
		want = "argon2i"
	}
	if len(f) != 6 || f[0] != "" || f[1] != want || f[2] != "v=19" {
		return nil, bad
	}
	h := &passwordHash{scheme: scheme, cost: f[3]}
	for kv := range strings.SplitSeq(f[3], ",") {
		k, v, _ := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return nil, bad
		}
		switch k {
		case "m":
			h.m = uint32(n)
		case "t":
			h.t = uint32(n)
		case "p":
			if n > 255 {
				return nil, bad
			}
			h.p = uint8(n)
		default:
			return nil, bad
		}
	}
	if h.t < 1 || h.t > maxArgonTime || h.p < 1 || h.m < 8*uint32(h.p) || h.m > maxArgonMemory {
		return nil, fmt.Errorf("{%s}: parameters %s out of range: %w", scheme, f[3], errBadHash)
	}
	var err error
	if h.salt, err = base64.RawStdEncoding.DecodeString(f[4]); err != nil || len(h.salt) < 8 {
		return nil, bad
	}
	if h.key, err = base64.RawStdEncoding.DecodeString(f[5]); err != nil || len(h.key) < 4 || len(h.key) > maxArgonKeyLen {
		return nil, bad
	}
	return h, nil
}

// verify reports whether password matches. It does the full work of the
// scheme whatever the outcome; onWork, if set, is told about that work.
func (h *passwordHash) verify(password string, onWork func(scheme, cost string)) bool {
	if onWork != nil {
		onWork(h.scheme, h.cost)
	}
	switch h.scheme {
	case SchemePlain:
		return subtle.ConstantTimeCompare([]byte(password), h.plain) == 1
	case SchemeArgon2ID:
		k := argon2.IDKey([]byte(password), h.salt, h.t, h.m, h.p, uint32(len(h.key)))
		return subtle.ConstantTimeCompare(k, h.key) == 1
	case SchemeArgon2I:
		k := argon2.Key([]byte(password), h.salt, h.t, h.m, h.p, uint32(len(h.key)))
		return subtle.ConstantTimeCompare(k, h.key) == 1
	case SchemeBcrypt:
		// bcrypt compares in constant time itself.
		return bcrypt.CompareHashAndPassword(h.bcrypt, []byte(password)) == nil
	}
	return false
}

// dummy returns a hash of the same scheme and cost that no password
// matches, used for unknown users so they cost the same work as real ones.
func (h *passwordHash) dummy() *passwordHash {
	d := *h
	switch h.scheme {
	case SchemePlain:
		d.plain = randomBytes(len(h.plain))
	case SchemeArgon2ID, SchemeArgon2I:
		d.salt = randomBytes(len(h.salt))
		d.key = randomBytes(len(h.key))
	case SchemeBcrypt:
		// Same "$2x$NN$" prefix, random salt and checksum in bcrypt's
		// alphabet: bcrypt parses it and does the full work, then mismatches.
		const alphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
		b := append([]byte(nil), h.bcrypt[:7]...)
		for _, r := range randomBytes(53) {
			b = append(b, alphabet[int(r)%len(alphabet)])
		}
		d.bcrypt = b
	}
	return &d
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go ≥1.24)
	return b
}
