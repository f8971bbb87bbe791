package accounts

import (
	"crypto/hmac"
	"crypto/md5"
	"encoding"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"strings"
)

// CRAM-MD5 (RFC 2195) without a plaintext password on disk. HMAC-MD5
// (RFC 2104) starts by hashing one 64-byte block, key^ipad (inner) and
// key^opad (outer); after that block an MD5 state is just four 32-bit
// words. Dovecot stores exactly those states as "{CRAM-MD5}" + 64 hex
// digits: the OUTER state's words a, b, c, d, then the INNER state's, each
// word little-endian (hmac_md5_get_cram_context in Dovecot's lib). We write
// and read the same layout, so the secret moves between the two.

const cramPrefix = "{CRAM-MD5}"

// cramState is the precomputed HMAC-MD5 state: outer then inner words.
type cramState struct {
	outer, inner [4]uint32
}

// CRAMMD5Secret returns the "{CRAM-MD5}" precomputed HMAC-MD5 state for
// password (Dovecot's format: inner and outer MD5 states, 64 hex digits), so
// CRAM-MD5 works without a plaintext password on disk.
func CRAMMD5Secret(password string) string {
	st := cramStateOf(password)
	var b [32]byte
	for i := range 4 {
		binary.LittleEndian.PutUint32(b[4*i:], st.outer[i])
		binary.LittleEndian.PutUint32(b[16+4*i:], st.inner[i])
	}
	return cramPrefix + hex.EncodeToString(b[:])
}

// cramStateOf absorbs the padded key blocks and captures both MD5 states.
func cramStateOf(password string) cramState {
	key := []byte(password)
	if len(key) > md5.BlockSize { // RFC 2104 §2: long keys are hashed first
		sum := md5.Sum(key)
		key = sum[:]
	}
	var ipad, opad [md5.BlockSize]byte
	copy(ipad[:], key)
	copy(opad[:], key)
	for i := range ipad {
		ipad[i] ^= 0x36
		opad[i] ^= 0x5c
	}
	return cramState{outer: md5StateAfter(opad[:]), inner: md5StateAfter(ipad[:])}
}

// md5StateAfter hashes one block and returns MD5's a, b, c, d words. Go's
// MD5 marshals as "md5\x01", four big-endian words, the 64-byte buffer and
// a big-endian length.
func md5StateAfter(block []byte) [4]uint32 {
	h := md5.New()
	h.Write(block)
	b, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		panic("accounts: md5 state not marshalable: " + err.Error()) // crypto/md5 always is
	}
	var s [4]uint32
	for i := range s {
		s[i] = binary.BigEndian.Uint32(b[4+4*i:])
	}
	return s
}

// md5FromState rebuilds an MD5 hash that has absorbed exactly one block
// leaving state s.
func md5FromState(s [4]uint32) hash.Hash {
	b := make([]byte, 0, 4+16+md5.BlockSize+8)
	b = append(b, "md5\x01"...)
	for _, w := range s {
		b = binary.BigEndian.AppendUint32(b, w)
	}
	b = append(b, make([]byte, md5.BlockSize)...)
	b = binary.BigEndian.AppendUint64(b, md5.BlockSize)
	h := md5.New()
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(b); err != nil {
		panic("accounts: md5 state not unmarshalable: " + err.Error())
	}
	return h
}

// parseCRAMSecret parses "{CRAM-MD5}<64 hex>" (scheme name any case;
// Dovecot's older name {HMAC-MD5} for the same thing is accepted too).
func parseCRAMSecret(s string) (cramState, error) {
	var st cramState
	scheme, rest, ok := splitScheme(s)
	if !ok || (scheme != "CRAM-MD5" && scheme != "HMAC-MD5") || len(rest) != 64 {
		return st, fmt.Errorf("CRAM-MD5 secret must be %s followed by 64 hex digits", cramPrefix)
	}
	b, err := hex.DecodeString(strings.ToLower(rest))
	if err != nil {
		return st, fmt.Errorf("CRAM-MD5 secret: %w", err)
	}
	for i := range 4 {
		st.outer[i] = binary.LittleEndian.Uint32(b[4*i:])
		st.inner[i] = binary.LittleEndian.Uint32(b[16+4*i:])
	}
	return st, nil
}

// digest computes HMAC-MD5(key, challenge) from the precomputed state.
func (st cramState) digest(challenge string) []byte {
	in := md5FromState(st.inner)
	in.Write([]byte(challenge))
	out := md5FromState(st.outer)
	out.Write(in.Sum(nil))
	return out.Sum(nil)
}

// verify compares a client's hex digest with ours in constant time.
func (st cramState) verify(challenge, digestHex string) bool {
	want := st.digest(challenge)
	got, err := hex.DecodeString(digestHex)
	if err != nil {
		got = nil // still compare, so malformed input costs the same
	}
	return hmac.Equal(want, got)
}
