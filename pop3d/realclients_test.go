package pop3d

import (
	"bytes"
	"context"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailsuite/mailsuite/internal/testkit"
)

func needTool(t *testing.T, name string) string { return testkit.NeedTool(t, name) }

// caFile writes the test CA certificate as PEM for external clients.
func caFile(t *testing.T) string {
	cert, _ := testCert(t)
	p := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func runTool(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	return runToolStatus(t, env, 0, name, args...)
}

func hostPort(t *testing.T, addr string) (string, string) {
	h, p, found := strings.Cut(addr, ":")
	if !found {
		t.Fatalf("bad addr %q", addr)
	}
	return h, p
}

// TestPythonPoplib: STLS, USER/PASS, UIDL, TOP, RETR byte for byte, DELE+QUIT.
func TestPythonPoplib(t *testing.T) {
	python := needTool(t, "python3")
	env := withMessages(t)
	expected := t.TempDir()
	for i, m := range []string{msg1, msg2, msg3} {
		if err := os.WriteFile(filepath.Join(expected, strconv.Itoa(i+1)+".eml"), []byte(crlf(m)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	f, before := env.inbox(alice)
	host, port := hostPort(t, env.addr)
	out := runTool(t, nil, python, "testdata/poplib_client.py", host, port, caFile(t), alice, alicePass, expected)
	var want strings.Builder
	for i, m := range before {
		fmt.Fprintf(&want, "%d %08x%08x\n", i+1, uint32(m.UID), f.UIDValidity())
	}
	if out != want.String() {
		t.Errorf("poplib UIDL:\n%s\nwant:\n%s", out, want.String())
	}
	if _, after := env.inbox(alice); len(after) != 2 || after[0].UID != before[1].UID {
		t.Fatalf("after DELE 1 + QUIT: %+v", after)
	}
}

// TestCurl: pop3:// with STLS (LIST and RETR), AUTH=PLAIN, and pop3s://.
func TestCurl(t *testing.T) {
	curl := needTool(t, "curl")
	env := withMessages(t)
	ca := caFile(t)
	user := alice + ":" + alicePass
	list := runTool(t, nil, curl, "-sS", "--max-time", "20", "--ssl-reqd", "--cacert", ca,
		"-u", user, "pop3://"+env.addr+"/")
	want := fmt.Sprintf("1 %d\r\n2 %d\r\n3 %d\r\n", len(crlf(msg1)), len(crlf(msg2)), len(crlf(msg3)))
	if list != want {
		t.Errorf("curl LIST: %q, want %q", list, want)
	}
	retr := runTool(t, nil, curl, "-sS", "--max-time", "20", "--ssl-reqd", "--cacert", ca,
		"--login-options", "AUTH=PLAIN", "-u", user, "pop3://"+env.addr+"/2")
	if retr != crlf(msg2) {
		t.Errorf("curl RETR 2 (AUTH=PLAIN): %q, want %q", retr, crlf(msg2))
	}

	implicit := startServer(t, func(o *Options) { o.TLSMode = TLSImplicit })
	implicit.deliver(bob, msg3)
	retr = runTool(t, nil, curl, "-sS", "--max-time", "20", "-k", "-u", bob+":"+bobPass, "pop3s://"+implicit.addr+"/1")
	if retr != crlf(msg3) {
		t.Errorf("curl pop3s RETR 1: %q, want %q", retr, crlf(msg3))
	}
	list = runTool(t, nil, curl, "-sS", "--max-time", "20", "-k", "--login-options", "AUTH=PLAIN",
		"-u", bob+":"+bobPass, "pop3s://"+implicit.addr+"/")
	if list != fmt.Sprintf("1 %d\r\n", len(crlf(msg3))) {
		t.Errorf("curl pop3s LIST: %q", list)
	}
}

// TestFetchmail: keep mode twice (the second run must fetch nothing: UIDLs
// are stable), then flush mode, which deletes everything.
func TestFetchmail(t *testing.T) {
	fetchmail := needTool(t, "fetchmail")
	env := withMessages(t)
	home := t.TempDir()
	mbox := filepath.Join(home, "mbox")
	_, port := hostPort(t, env.addr)
	ca := caFile(t)
	run := func(mode string) string {
		rc := filepath.Join(home, ".fetchmailrc")
		conf := fmt.Sprintf(`set no bouncemail
set no syslog
poll localhost with proto POP3 service %s uidl
  user "%s" there with password "%s" is "%s" here
  options %s sslcertck sslcertfile "%s"
  mda "cat >> %s"
`, port, alice, alicePass, localUser(t), mode, ca, mbox)
		if err := os.WriteFile(rc, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		return runToolStatus(t, []string{"HOME=" + home}, 1, fetchmail, "-f", rc, "-N", "-v",
			"--idfile", filepath.Join(home, ".fetchids"), "--pidfile", filepath.Join(home, "pid"))
	}
	run("keep")
	got, _ := os.ReadFile(mbox)
	for _, s := range []string{"Subject: one", "Subject: two", "Subject: three"} {
		if bytes.Count(got, []byte(s)) != 1 {
			t.Fatalf("keep run: %q appears %d times in\n%s", s, bytes.Count(got, []byte(s)), got)
		}
	}
	if _, msgs := env.inbox(alice); len(msgs) != 3 {
		t.Fatalf("keep mode left %d messages", len(msgs))
	}
	run("keep")
	again, _ := os.ReadFile(mbox)
	if !bytes.Equal(again, got) {
		t.Fatalf("second keep run fetched again:\n%s", again[len(got):])
	}
	run("no keep fetchall")
	if _, msgs := env.inbox(alice); len(msgs) != 0 {
		t.Fatalf("flush mode left %d messages", len(msgs))
	}
	final, _ := os.ReadFile(mbox)
	if bytes.Count(final, []byte("Subject: one")) != 2 {
		t.Fatalf("flush run did not deliver again:\n%s", final)
	}
}

// runToolStatus runs a client with a timeout and returns its stdout; exit
// status okStatus counts as success too (fetchmail's 1 means "no mail").
func runToolStatus(t *testing.T, env []string, okStatus int, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == okStatus {
		err = nil
	}
	if err != nil {
		t.Fatalf("%s %q: %v\nstdout:\n%s\nstderr:\n%s", name, args, err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

func localUser(t *testing.T) string {
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	return u.Username
}
