package relay

// DKIM (RFC 6376) keys live in <data>/dkim/<domain>.<selector>.key as PKCS#8
// PEM. Outbound mail whose From domain is local and has a key is signed at
// delivery time, so a key added later also signs mail already queued.

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/mailsuite/mailsuite/internal/atomicfile"
)

// KeyType is a DKIM key algorithm.
type KeyType string

const (
	KeyRSA     KeyType = "rsa"     // RSA 2048, understood by every verifier
	KeyEd25519 KeyType = "ed25519" // RFC 8463; not every verifier has it yet
)

// signedHeaders are the fields we sign (RFC 6376 §5.4.1's recommendation).
// Each may appear only once in a message (RFC 5322 §3.6), and each is
// listed twice ("oversigned", RFC 6376 §8.15): the second entry signs the
// absence of another copy, so one added above ours later (a forged From
// in a replayed message) breaks the signature.
var signedHeaders = oversign("From", "Reply-To", "Subject", "Date", "To", "Cc",
	"Message-ID", "In-Reply-To", "References", "MIME-Version", "Content-Type",
	"Content-Transfer-Encoding")

func oversign(keys ...string) []string { return append(keys, keys...) }

// GenerateKey creates an RSA-2048 DKIM key for domain and selector in
// dataDir/dkim and returns the DNS TXT record text to publish at
// DKIMRecordName(domain, selector). It refuses to replace an existing key.
func GenerateKey(dataDir, domain, selector string) (string, error) {
	return GenerateKeyType(dataDir, domain, selector, KeyRSA)
}

// GenerateKeyType is GenerateKey with a choice of algorithm.
func GenerateKeyType(dataDir, domain, selector string, kt KeyType) (string, error) {
	path, err := keyPath(dataDir, domain, selector)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(path); err == nil {
		return "", fmt.Errorf("relay: DKIM key %s already exists: %w", path, fs.ErrExist)
	}
	var key crypto.Signer
	switch kt {
	case KeyRSA, "":
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	case KeyEd25519:
		_, key, err = ed25519.GenerateKey(rand.Reader)
	default:
		return "", fmt.Errorf("relay: unknown DKIM key type %q (want rsa or ed25519)", kt)
	}
	if err != nil {
		return "", fmt.Errorf("relay: generate DKIM key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", fmt.Errorf("relay: encode DKIM key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("relay: create DKIM directory: %w", err)
	}
	pemData := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if err := atomicfile.WriteFile(path, pemData); err != nil {
		return "", fmt.Errorf("relay: save DKIM key: %w", err)
	}
	return dkimRecord(key)
}

// DKIMRecord returns the TXT record text of an existing key.
func DKIMRecord(dataDir, domain, selector string) (string, error) {
	path, err := keyPath(dataDir, domain, selector)
	if err != nil {
		return "", err
	}
	key, err := loadKey(path)
	if err != nil {
		return "", err
	}
	return dkimRecord(key)
}

// DKIMRecordName is where the TXT record goes (RFC 6376 §3.6.2.1).
func DKIMRecordName(domain, selector string) string {
	return selector + "._domainkey." + strings.ToLower(domain)
}

func dkimRecord(key crypto.Signer) (string, error) {
	switch pub := key.Public().(type) {
	case *rsa.PublicKey:
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			return "", fmt.Errorf("relay: encode DKIM public key: %w", err)
		}
		return "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der), nil
	case ed25519.PublicKey:
		// RFC 8463 §4.2: the raw 32-byte key.
		return "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub), nil
	}
	return "", errors.New("relay: unsupported DKIM key type")
}

func keyPath(dataDir, domain, selector string) (string, error) {
	domain = strings.ToLower(domain)
	if !dnsLabels(domain) || !strings.Contains(domain, ".") {
		return "", fmt.Errorf("relay: bad DKIM domain %q", domain)
	}
	// One label only, so that <domain>.<selector>.key parses back
	// unambiguously.
	if !dnsLabels(selector) || strings.Contains(selector, ".") {
		return "", fmt.Errorf("relay: bad DKIM selector %q", selector)
	}
	return filepath.Join(dataDir, "dkim", domain+"."+selector+".key"), nil
}

// dnsLabels accepts dot-separated labels of letters, digits, '-' and '_'.
func dnsLabels(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' {
			return false
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

func loadKey(path string) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("relay: read DKIM key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("relay: %s: no PEM block", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("relay: %s: %w", path, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("relay: %s: not a signing key", path)
	}
	return s, nil
}

// signingKey finds the key of a domain: Options.DKIMSelector's if that key
// exists, else the one with the greatest selector (so a rotated-in key
// "2027" beats "2026").
func (q *Queue) signingKey(domain string) (selector string, key crypto.Signer, err error) {
	domain = strings.ToLower(domain)
	if !dnsLabels(domain) {
		return "", nil, nil
	}
	if sel := q.opts.DKIMSelector; sel != "" {
		if path, err := keyPath(q.opts.DataDir, domain, sel); err == nil {
			if _, err := os.Stat(path); err == nil {
				key, err := loadKey(path)
				return sel, key, err
			}
		}
	}
	matches, err := filepath.Glob(filepath.Join(q.opts.DataDir, "dkim", domain+".*.key"))
	if err != nil {
		return "", nil, err
	}
	// The glob also matches keys of longer domains (example.com.au's for
	// example.com): only a one-label selector is this domain's.
	var sels []string
	for _, m := range matches {
		sel := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(m), domain+"."), ".key")
		if !strings.Contains(sel, ".") && dnsLabels(sel) {
			sels = append(sels, sel)
		}
	}
	if len(sels) == 0 {
		return "", nil, nil
	}
	selector = slices.Max(sels)
	path, err := keyPath(q.opts.DataDir, domain, selector)
	if err != nil {
		return "", nil, err
	}
	key, err = loadKey(path)
	return selector, key, err
}

// dkimHeader returns the DKIM-Signature field for the queued message at
// path, or nil when it is not to be signed.
func (q *Queue) dkimHeader(path string) ([]byte, error) {
	if q.opts.DisableDKIM {
		return nil, nil
	}
	hdr, err := readHeader(path)
	if err != nil {
		return nil, err
	}
	m, err := mail.ReadMessage(bytes.NewReader(append(hdr, "\r\n"...)))
	if err != nil {
		return nil, nil // unparsable header: send as is
	}
	from, err := mail.ParseAddress(m.Header.Get("From"))
	if err != nil {
		return nil, nil
	}
	domain := from.Address[strings.LastIndexByte(from.Address, '@')+1:]
	if !q.opts.isLocal(domain) {
		return nil, nil
	}
	selector, key, err := q.signingKey(domain)
	if err != nil || key == nil {
		return nil, err
	}
	s, err := dkim.NewSigner(&dkim.SignOptions{
		Domain: strings.ToLower(domain), Selector: selector, Signer: key,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed,
		BodyCanonicalization:   dkim.CanonicalizationRelaxed,
		HeaderKeys:             signedHeaders,
	})
	if err != nil {
		return nil, fmt.Errorf("relay: DKIM signer: %w", err)
	}
	f, err := os.Open(path)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("relay: open queued message: %w", err)
	}
	defer f.Close()
	if _, err := io.Copy(s, f); err != nil {
		s.Close()
		return nil, fmt.Errorf("relay: DKIM sign: %w", err)
	}
	if err := s.Close(); err != nil {
		return nil, fmt.Errorf("relay: DKIM sign: %w", err)
	}
	return []byte(s.Signature()), nil
}
