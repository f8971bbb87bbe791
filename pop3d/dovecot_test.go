package pop3d

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const dovecotPOP3 = "/usr/lib/dovecot/pop3"

// TestDovecotAgrees runs Dovecot's own pop3 process (pre-authenticated,
// over stdin/stdout, default pop3_uidl_format) on the maildir mailsuite
// wrote, and compares it with our server: the same UIDLs, the same RETR
// octets, and the same LIST sizes except where Dovecot undercounts a
// message whose last line lacks a newline (it adds the CRLF to RETR but
// not to LIST; we count it, as RFC 1939 requires).
func TestDovecotAgrees(t *testing.T) {
	if _, err := os.Stat(dovecotPOP3); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Dovecot is required in CI (apt-get install dovecot-pop3d): %v", err)
		}
		t.Skipf("Dovecot not installed (%s missing): skipping the comparison", dovecotPOP3)
	}
	env := withMessages(t)
	script := []string{"UIDL", "LIST", "RETR 1", "RETR 2", "RETR 3"}
	ours := func() []string {
		c := env.loginRetry(alice, alicePass)
		var out []string
		for _, cmd := range script {
			c.send(cmd)
			c.expect("+OK")
			out = append(out, strings.Join(c.multi(), "\n"))
		}
		c.send("QUIT")
		c.expect("+OK")
		return out
	}
	before := ours()
	theirs := runDovecotPOP3(t, filepath.Join(env.root, "example.org", "alice"), script)

	if before[0] != theirs[0] {
		t.Errorf("UIDL differs:\nours:    %q\nDovecot: %q", before[0], theirs[0])
	}
	for i := 2; i < len(script); i++ {
		if before[i] != theirs[i] {
			t.Errorf("%s differs:\nours:    %q\nDovecot: %q", script[i], before[i], theirs[i])
		}
	}
	wantList := fmt.Sprintf("1 %d\n2 %d\n3 %d", len(crlf(msg1)), len(crlf(msg2)), len(crlf(msg3))-2)
	if theirs[1] != wantList {
		t.Errorf("Dovecot LIST %q, expected %q", theirs[1], wantList)
	}
	if after := ours(); after[0] != before[0] {
		t.Errorf("UIDL changed after Dovecot opened the tree:\n%q\n%q", before[0], after[0])
	}
}

// runDovecotPOP3 runs cmds through Dovecot's pop3 on maildir and returns
// each multi-line response body, lines joined with "\n".
func runDovecotPOP3(t *testing.T, maildir string, cmds []string) []string {
	t.Helper()
	base := t.TempDir()
	home := filepath.Join(base, "home")
	for _, p := range []string{home, filepath.Join(base, "run")} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	conf := fmt.Sprintf("mail_location = maildir:%s\nprotocols = pop3\nlog_path = %s\nbase_dir = %s\nstate_dir = %s\nssl = no\n",
		maildir, filepath.Join(base, "log"), filepath.Join(base, "run"), filepath.Join(base, "run"))
	if os.Getuid() == 0 {
		// Dovecot refuses to read mail as root: run it as nobody, who must
		// reach and own the tree (root still reads it afterwards).
		conf += "mail_uid = 65534\nmail_gid = 65534\nfirst_valid_uid = 1\nfirst_valid_gid = 1\n"
		for _, top := range []string{base, maildir} {
			for p := top; p != "/" && p != os.TempDir(); p = filepath.Dir(p) {
				if st, err := os.Stat(p); err == nil && st.IsDir() {
					os.Chmod(p, st.Mode().Perm()|0o711)
				}
			}
		}
		for _, top := range []string{home, maildir} {
			filepath.Walk(top, func(p string, _ os.FileInfo, err error) error {
				if err == nil {
					os.Lchown(p, 65534, 65534)
				}
				return nil
			})
		}
	}
	confPath := filepath.Join(base, "dovecot.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(base, "log"), nil, 0o666)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, dovecotPOP3, "-c", confPath)
	cmd.Env = []string{"USER=tester", "HOME=" + home, "PATH=/usr/bin:/bin"}
	cmd.Stdin = strings.NewReader(strings.Join(append(cmds, "QUIT"), "\r\n") + "\r\n")
	out, err := cmd.Output()
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(base, "log"))
		t.Fatalf("dovecot pop3: %v\n%s\nlog:\n%s", err, out, log)
	}
	lines := strings.Split(string(out), "\r\n")
	var res []string
	for i := 0; i < len(lines) && len(res) < len(cmds); i++ {
		if !strings.HasPrefix(lines[i], "+OK") {
			t.Fatalf("dovecot pop3 output:\n%s", out)
		}
		var body []string
		for i++; i < len(lines) && lines[i] != "."; i++ {
			body = append(body, lines[i])
		}
		res = append(res, strings.Join(body, "\n"))
	}
	if len(res) != len(cmds) {
		t.Fatalf("dovecot pop3 output:\n%s", out)
	}
	return res
}
