package accounts

// HashPassword returns an "{ARGON2ID}$argon2id$v=19$m=...,t=...,p=...$salt$hash"
// string, the format Dovecot's doveadm pw writes.
func HashPassword(password string) (string, error) { return "", errUnimplemented }

// CRAMMD5Secret returns the "{CRAM-MD5}" precomputed HMAC-MD5 state for
// password (Dovecot's format: inner and outer MD5 states, 64 hex digits), so
// CRAM-MD5 works without a plaintext password on disk.
func CRAMMD5Secret(password string) string { return "" }
