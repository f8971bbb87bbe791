package mailsuite

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/mailsuite/mailsuite/internal/atomicfile"
)

// selfSignedValidity is long because nobody renews a demo certificate, and
// mail clients ask the user to accept it once anyway.
const selfSignedValidity = 5 * 365 * 24 * time.Hour

// loadTLS returns the server TLS configuration: the configured certificate,
// or a self-signed one kept in <data>/tls/, made on first start.
func loadTLS(c *Config, log *slog.Logger) (*tls.Config, error) {
	certFile, keyFile := c.TLS.CertFile, c.TLS.KeyFile
	if certFile == "" {
		dir := filepath.Join(c.Server.DataDir, "tls")
		certFile, keyFile = filepath.Join(dir, "selfsigned.crt"), filepath.Join(dir, "selfsigned.key")
		if _, err := os.Stat(certFile); errors.Is(err, fs.ErrNotExist) {
			if err := makeSelfSigned(dir, certFile, keyFile, c.Server.Hostname); err != nil {
				return nil, fmt.Errorf("tls: making self-signed certificate: %w", err)
			}
			log.Warn("made a self-signed TLS certificate; clients will ask to trust it. Set [tls] cert_file and key_file for a real one.",
				"cert", certFile, "hostname", c.Server.Hostname)
		}
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: loading %s: %w", certFile, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// makeSelfSigned writes an ECDSA P-256 certificate for hostname, localhost,
// 127.0.0.1 and ::1.
func makeSelfSigned(dir, certFile, keyFile, hostname string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: hostname, Organization: []string{"mailsuite self-signed"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(selfSignedValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              uniqueNames(hostname, "localhost"),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	// Key first (atomicfile writes mode 0600): a certificate without its key
	// would stop every later start.
	if err := atomicfile.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})); err != nil {
		return err
	}
	return atomicfile.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func uniqueNames(names ...string) []string {
	var out []string
	seen := map[string]bool{}
	for _, n := range names {
		if n != "" && net.ParseIP(n) == nil && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}
