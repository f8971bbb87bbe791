package imapd

import (
	"bufio"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// needTool finds a real client or skips, except in CI where a missing
// client is a failure.
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required in CI: %v", name, err)
		}
		t.Skipf("%s not installed; skipping this real-client test", name)
	}
	return p
}

// Python's imaplib over STARTTLS and IMAPS: LIST, SELECT, SEARCH, FETCH,
// STORE, APPEND, UID MOVE, and a raw IDLE that must see a delivery.
func TestPythonImaplib(t *testing.T) {
	py := needTool(t, "python3")
	for _, mode := range []string{"starttls", "imaps"} {
		t.Run(mode, func(t *testing.T) {
			e := startServer(t, func(o *Options) {
				o.AllowInsecureAuth = false
				if mode == "imaps" {
					o.TLSMode = TLSImplicit
				}
			})
			host, port, _ := strings.Cut(e.addr, ":")
			cmd := exec.Command(py, "testdata/imaplib_client.py", host, port, e.certFile, alice, alicePW, mode)
			cmd.Stderr = testWriter{t}
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			timer := time.AfterFunc(30*time.Second, func() { cmd.Process.Kill() })
			defer timer.Stop()
			var lines []string
			go func() {
				defer close(done)
				sc := bufio.NewScanner(out)
				for sc.Scan() {
					lines = append(lines, sc.Text())
					if sc.Text() == "IDLING" {
						e.deliver(t, testMsg("pushed", "x"), alice)
					}
				}
			}()
			<-done
			if err := cmd.Wait(); err != nil {
				t.Fatalf("imaplib client failed: %v (output %q)", err, lines)
			}
			if len(lines) < 3 || lines[1] != "EXISTS 1" || lines[2] != "DONE" {
				t.Fatalf("output %q", lines)
			}
		})
	}
}

// curl's IMAP client: imap:// (plaintext on loopback with AllowInsecureAuth,
// and STARTTLS with --ssl-reqd) and imaps:// with -k: LIST and FETCH.
func TestCurl(t *testing.T) {
	curl := needTool(t, "curl")
	msg := testMsg("for curl", "curl body line")
	cases := []struct {
		name   string
		mode   TLSMode
		scheme string
		args   []string
	}{
		{"imap-plain-loopback", TLSOptional, "imap", nil},
		{"imap-starttls", TLSRequired, "imap", []string{"--ssl-reqd", "-k"}},
		{"imaps", TLSImplicit, "imaps", []string{"-k"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := startServer(t, func(o *Options) { o.TLSMode = tc.mode })
			e.deliver(t, msg, alice)
			run := func(path string) string {
				t.Helper()
				args := append([]string{"-sS", "--max-time", "20", "-u", alice + ":" + alicePW}, tc.args...)
				args = append(args, tc.scheme+"://"+e.addr+path)
				out, err := exec.Command(curl, args...).CombinedOutput()
				if err != nil {
					t.Fatalf("curl %s: %v\n%s", path, err, out)
				}
				return string(out)
			}
			list := run("/")
			for _, want := range []string{`"/" INBOX`, `"/" "Sent"`, `"/" "Trash"`} {
				if !strings.Contains(list, want) {
					t.Errorf("LIST lacks %s:\n%s", want, list)
				}
			}
			if got := run("/INBOX;UID=1"); got != msg {
				t.Errorf("FETCH = %q, want %q", got, msg)
			}
			if got := run("/INBOX?SUBJECT%20curl"); !strings.Contains(got, "SEARCH 1") {
				t.Errorf("SEARCH = %q", got)
			}
		})
	}
}
