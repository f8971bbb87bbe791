package integration

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mailsuite/mailsuite"
	"github.com/mailsuite/mailsuite/internal/testkit"
)

// Real clients drive the whole suite end to end. A missing tool skips its
// test on a developer's machine and fails it in CI (CI=true), where
// .ci/run installs them all (testkit.NeedTool).

// runTool runs a client with a time limit and returns its stdout; a
// non-zero exit fails the test unless allowed lists its exit code.
func runTool(t *testing.T, env []string, allowed []int, name string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := cmd.ProcessState.ExitCode()
	if err != nil {
		ok := false
		for _, a := range allowed {
			ok = ok || a == code
		}
		if !ok {
			t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", filepath.Base(name), strings.Join(args, " "), err, stdout.String(), stderr.String())
		}
	}
	return stdout.String(), code
}

func (h *harness) caFile() string { return filepath.Join(h.dataDir, "tls", "selfsigned.crt") }

func (h *harness) port(name string) string {
	_, p, _ := net.SplitHostPort(h.addr(name))
	return p
}

func writeFile(t *testing.T, dir, name string, data []byte, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func officeSuite(t *testing.T) *harness {
	return startSuite(t, configWith(officeAliases, "alice@example.com", "bob@example.com", "dave@example.com"), mailsuite.Options{})
}

// Python's smtplib sends over submission (STARTTLS, AUTH); poplib and
// imaplib read the message back; the POP3 UIDL is the IMAP UID and
// UIDVALIDITY in Dovecot's format.
func TestRealClientPython(t *testing.T) {
	py := testkit.NeedTool(t, "python3")
	h := officeSuite(t)
	m := newMessage("alice@example.com", "bob@example.com", "from Python", 5000)
	msgFile := writeFile(t, t.TempDir(), "msg.eml", m.Raw, 0o600)
	out, _ := runTool(t, nil, nil, py, "testdata/python_roundtrip.py", h.caFile(), "127.0.0.1",
		h.port("submission"), h.port("pop3s"), h.port("imaps"),
		"alice@example.com", users["alice@example.com"], "bob@example.com", users["bob@example.com"], msgFile)
	var uidl string
	var uid, uidv uint32
	if _, err := fmt.Sscanf(strings.TrimSpace(out), "uidl=%s uid=%d uidvalidity=%d", &uidl, &uid, &uidv); err != nil {
		t.Fatalf("script output %q: %v", out, err)
	}
	if want := fmt.Sprintf("%08x%08x", uid, uidv); uidl != want {
		t.Errorf("POP3 UIDL %s, want %s from IMAP UID %d UIDVALIDITY %d", uidl, want, uid, uidv)
	}
	checkInbox(t, h, "bob@example.com", m.ID)
}

// swaks submits with PIPELINING over STARTTLS (certificate verified) and
// AUTH, and over implicit TLS; the messages arrive whole for every
// recipient.
func TestRealClientSwaks(t *testing.T) {
	swaks := testkit.NeedTool(t, "swaks")
	h := officeSuite(t)
	m := newMessage("alice@example.com", "team@example.com", "from swaks", 8000)
	// swaks ends DATA with CRLF "." CRLF after the file's last byte, so the
	// file's own final line end would add a line.
	msgFile := writeFile(t, t.TempDir(), "msg.eml", bytes.TrimSuffix(m.Raw, []byte("\r\n")), 0o600)
	out, _ := runTool(t, nil, nil, swaks, "--server", "127.0.0.1", "--port", h.port("submission"),
		"--tls", "--tls-verify", "--tls-ca-path", h.caFile(),
		"--auth", "PLAIN", "--auth-user", "alice@example.com", "--auth-password", users["alice@example.com"],
		"--from", "alice@example.com", "--to", "bob@example.com,dave@example.com",
		"--pipeline", "--data", msgFile, "--helo", "swaks.example.net")
	for _, want := range []string{
		`(?m)^<~  250-PIPELINING`, // offered after STARTTLS
		`(?m)^ ~> MAIL FROM:<alice@example.com>\n ~> RCPT TO:<bob@example.com>\n ~> RCPT TO:<dave@example.com>\n ~> DATA\n`, // sent as one batch
		`(?m)^<~  250 2\.0\.0 OK: queued as \w+\n(?s:.*)221 `,                                                               // the final reply
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("swaks transcript does not match %s:\n%s", want, out)
		}
	}
	// The same over implicit TLS (port 465, RFC 8314) with AUTH LOGIN.
	m2 := newMessage("alice@example.com", "bob@example.com", "from swaks over 465", 2000)
	msgFile2 := writeFile(t, t.TempDir(), "msg.eml", bytes.TrimSuffix(m2.Raw, []byte("\r\n")), 0o600)
	out, _ = runTool(t, nil, nil, swaks, "--server", "127.0.0.1", "--port", h.port("submissions"),
		"--tlsc", "--tls-verify", "--tls-ca-path", h.caFile(),
		"--auth", "LOGIN", "--auth-user", "alice@example.com", "--auth-password", users["alice@example.com"],
		"--from", "alice@example.com", "--to", "bob@example.com",
		"--pipeline", "--data", msgFile2, "--helo", "swaks.example.net")
	if !regexp.MustCompile(`(?m)^<~  250 2\.0\.0 OK: queued as \w+$`).MatchString(out) {
		t.Errorf("swaks over port 465 got no final 250:\n%s", out)
	}
	checkInbox(t, h, "bob@example.com", m.ID, m2.ID)
	checkInbox(t, h, "dave@example.com", m.ID)
}

// curl reads messages over imaps:// (by UID) and pop3s:// (by number),
// and over the plain ports after STARTTLS/STLS, verifying the certificate;
// without TLS it gets nothing.
func TestRealClientCurl(t *testing.T) {
	curl := testkit.NeedTool(t, "curl")
	h := officeSuite(t)
	ids := h.aliceMailsBob(t, 2, "for curl")
	common := []string{"--silent", "--show-error", "--ssl-reqd", "--cacert", h.caFile(), "--max-time", "20",
		"--user", "bob@example.com:" + users["bob@example.com"]}
	var got []string
	for _, uid := range []string{"1", "2"} {
		out, _ := runTool(t, nil, nil, curl, append(common, "imaps://127.0.0.1:"+h.port("imaps")+"/INBOX;UID="+uid)...)
		id, err := checkMessage([]byte(out))
		if err != nil {
			t.Fatalf("curl imaps UID %s: %v", uid, err)
		}
		got = append(got, id)
	}
	wantIDs(t, "curl over IMAP", got, ids...)
	got = nil
	for _, n := range []string{"1", "2"} {
		out, _ := runTool(t, nil, nil, curl, append(common, "pop3s://127.0.0.1:"+h.port("pop3s")+"/"+n)...)
		id, err := checkMessage([]byte(out))
		if err != nil {
			t.Fatalf("curl pop3s %s: %v", n, err)
		}
		got = append(got, id)
	}
	wantIDs(t, "curl over POP3", got, ids...)
	// The plain ports with STARTTLS / STLS (--ssl-reqd makes curl upgrade).
	for _, url := range []string{"imap://127.0.0.1:" + h.port("imap") + "/INBOX;UID=1", "pop3://127.0.0.1:" + h.port("pop3") + "/1"} {
		out, _ := runTool(t, nil, nil, curl, append(common, url)...)
		if id, err := checkMessage([]byte(out)); err != nil || id != ids[0] {
			t.Errorf("curl %s after STARTTLS: %q %v", url, id, err)
		}
	}
	// Without TLS a password in clear is never accepted (not on loopback
	// either: plaintext_auth_on_loopback is off). IMAP offers no mechanism
	// at all; POP3 offers only CRAM-MD5, which does not reveal it.
	plain := append([]string(nil), common[:2]...) // no --ssl-reqd
	plain = append(plain, common[3:]...)
	for _, args := range [][]string{
		{"imap://127.0.0.1:" + h.port("imap") + "/INBOX;UID=1"},
		{"--login-options", "AUTH=PLAIN", "pop3://127.0.0.1:" + h.port("pop3") + "/1"},
		{"--login-options", "AUTH=LOGIN", "pop3://127.0.0.1:" + h.port("pop3") + "/1"},
	} {
		if out, code := runTool(t, nil, []int{67, 8, 78, 56}, curl, append(plain, args...)...); code == 0 || strings.Contains(out, ids[0]) {
			t.Errorf("curl %v without TLS got mail (exit %d)", args, code)
		}
	}
	// A wrong password is refused, not served.
	bad := append([]string(nil), common...)
	bad[len(bad)-1] = "bob@example.com:wrong-password"
	if _, code := runTool(t, nil, []int{67}, curl, append(bad, "pop3s://127.0.0.1:"+h.port("pop3s")+"/1")...); code != 67 {
		t.Errorf("curl with a wrong password exited %d, want 67 (login denied)", code)
	}
}
