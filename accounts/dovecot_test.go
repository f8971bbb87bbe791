package accounts

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Interoperability with Dovecot's own password code, when doveadm is
// installed (Debian: dovecot-core): hashes it writes verify here, and
// hashes we write verify there. This is the promise that lets an office
// move its users between the two.

func doveadm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	path, err := exec.LookPath("doveadm")
	if err != nil {
		t.Skip("doveadm not installed (Debian package dovecot-core)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, append([]string{"pw"}, args...)...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func TestDovecotHashesVerifyHere(t *testing.T) {
	for _, scheme := range []string{"ARGON2ID", "ARGON2I", "BLF-CRYPT", "PLAIN"} {
		stored, err := doveadm(t, "-s", scheme, "-p", "pässword")
		if err != nil {
			t.Fatalf("doveadm pw -s %s: %v: %s", scheme, err, stored)
		}
		h, err := parsePassword(stored)
		if err != nil {
			t.Fatalf("Dovecot's %s hash %q: %v", scheme, stored, err)
		}
		if !h.verify("pässword", nil) || h.verify("password", nil) {
			t.Errorf("Dovecot's %s hash %q: wrong verification", scheme, stored)
		}
	}
	secret, err := doveadm(t, "-s", "CRAM-MD5", "-p", "pässword")
	if err != nil {
		t.Fatal(err)
	}
	if got := CRAMMD5Secret("pässword"); got != secret {
		t.Errorf("CRAMMD5Secret = %s, Dovecot writes %s", got, secret)
	}
}

func TestOurHashesVerifyInDovecot(t *testing.T) {
	argon, err := HashPassword("pässword") // the default cost: what the CLI writes
	if err != nil {
		t.Fatal(err)
	}
	bc, err := HashPasswordWith("pässword", HashOptions{Scheme: SchemeBcrypt, BcryptCost: 5})
	if err != nil {
		t.Fatal(err)
	}
	for _, stored := range []string{argon, bc, CRAMMD5Secret("pässword")} {
		if out, err := doveadm(t, "-t", stored, "-p", "pässword"); err != nil {
			t.Errorf("doveadm pw -t %s: %v: %s", stored, err, out)
		}
		if _, err := doveadm(t, "-t", stored, "-p", "password"); err == nil {
			t.Errorf("doveadm accepts a wrong password for %s", stored)
		}
	}
}
