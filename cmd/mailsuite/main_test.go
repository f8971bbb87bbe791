package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mailsuite/mailsuite"
	"github.com/mailsuite/mailsuite/accounts"
)

func shippedConfig(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("../../mail.ini")
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func writeTemp(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "mail.ini")
	if err := os.WriteFile(path, []byte(content), 0o640); err != nil {
		t.Fatal(err)
	}
	return path
}

func runCmd(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestCheckConfigNamesTheUnknownKey(t *testing.T) {
	path := writeTemp(t, strings.Replace(shippedConfig(t), "mx_port = 25", "mx_port = 25\nmx_prot = 26", 1))
	code, _, stderr := runCmd(t, "", "check-config", "-config", path)
	if code == 0 {
		t.Fatal("check-config accepted an unknown key")
	}
	if !regexp.MustCompile(`mail\.ini:\d+: \[relay\] mx_prot: unknown key`).MatchString(stderr) {
		t.Fatalf("stderr %q does not name the file, line, section and key", stderr)
	}
}

func TestCheckConfigAcceptsShippedFile(t *testing.T) {
	code, stdout, stderr := runCmd(t, "", "check-config", "-config", "../../mail.ini")
	if code != 0 || !strings.Contains(stdout, "OK (1 users") {
		t.Fatalf("code %d stdout %q stderr %q", code, stdout, stderr)
	}
	if stderr != "" {
		t.Errorf("the shipped file should load without warnings; stderr %q", stderr)
	}
}

// user add, passwd and del edit the file in place, keep its comments, and
// the result logs in.
func TestUserCommandsEditTheFile(t *testing.T) {
	path := writeTemp(t, shippedConfig(t))
	code, _, stderr := runCmd(t, "carol-secret-1\n", "user", "add", "-config", path, "carol@example.com", "-quota", "1G")
	if code != 0 {
		t.Fatalf("user add: %d %s", code, stderr)
	}
	code, _, _ = runCmd(t, "carol-secret-1\n", "user", "add", "-config", path, "carol@example.com")
	if code == 0 {
		t.Fatal("adding carol twice succeeded")
	}
	data, _ := os.ReadFile(path)
	if !strings.Contains(string(data), "!!! DEMO USER: REMOVE THIS BEFORE GOING LIVE !!!") {
		t.Fatal("user add lost the file's comments")
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o640 {
		t.Errorf("mode changed to %v", st.Mode().Perm())
	}
	login(t, path, "carol@example.com", "carol-secret-1", true)

	if code, _, stderr = runCmd(t, "carol-secret-2\n", "user", "passwd", "-config", path, "carol@example.com"); code != 0 {
		t.Fatalf("user passwd: %s", stderr)
	}
	login(t, path, "carol@example.com", "carol-secret-1", false)
	login(t, path, "carol@example.com", "carol-secret-2", true)

	_, stdout, _ := runCmd(t, "", "user", "list", "-config", path)
	if !strings.Contains(stdout, "carol@example.com\tquota 1073741824") || !strings.Contains(stdout, "demo@example.com") {
		t.Fatalf("user list:\n%s", stdout)
	}
	if code, stdout, stderr = runCmd(t, "", "user", "del", "-config", path, "demo@example.com"); code != 0 {
		t.Fatalf("user del: %s", stderr)
	}
	// The shipped aliases pointed only at demo: they go too, and say so.
	if !strings.Contains(stdout, "removed alias postmaster@example.com") {
		t.Errorf("user del output %q does not report the alias it removed", stdout)
	}
	data, _ = os.ReadFile(path)
	if strings.Contains(string(data), "demo@example.com") || strings.Contains(string(data), "DEMO USER") {
		t.Fatalf("demo user, its alias targets or its comment still there:\n%s", data)
	}
	if _, err := mailsuite.LoadConfig(path); err != nil {
		t.Fatalf("the edited file no longer loads: %v", err)
	}
}

func TestUserDelKeepsOtherListMembers(t *testing.T) {
	cfg := shippedConfig(t) + "\n[user bob@example.com]\npassword = {PLAIN}bob-secret-1\n"
	cfg = strings.Replace(cfg, "abuse@example.com = demo@example.com", "abuse@example.com = demo@example.com, bob@example.com", 1)
	path := writeTemp(t, cfg)
	code, stdout, stderr := runCmd(t, "", "user", "del", "-config", path, "DEMO@example.com")
	if code != 0 {
		t.Fatalf("user del: %s", stderr)
	}
	if !strings.Contains(stdout, "took DEMO@example.com out of abuse@example.com") {
		t.Errorf("output %q", stdout)
	}
	c, err := mailsuite.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Aliases["abuse@example.com"]; len(got) != 1 || got[0] != "bob@example.com" {
		t.Fatalf("abuse@ = %v, want [bob@example.com]", got)
	}
}

func TestPasswdPrintsPasteableLines(t *testing.T) {
	code, stdout, stderr := runCmd(t, "correct horse battery\n", "passwd")
	if code != 0 {
		t.Fatalf("passwd: %s", stderr)
	}
	if !regexp.MustCompile(`(?m)^password = \{ARGON2ID\}\$argon2id\$v=19\$`).MatchString(stdout) ||
		!regexp.MustCompile(`(?m)^cram_md5 = \{CRAM-MD5\}[0-9a-f]{64}$`).MatchString(stdout) {
		t.Fatalf("unexpected output:\n%s", stdout)
	}
	if code, _, _ := runCmd(t, "short\n", "passwd"); code == 0 {
		t.Fatal("a 5-character password was accepted")
	}
}

func login(t *testing.T, path, user, pass string, want bool) {
	t.Helper()
	cfg, err := mailsuite.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := accounts.New(cfg.AccountsConfig())
	if err != nil {
		t.Fatal(err)
	}
	_, err = dir.Authenticate(context.Background(), user, pass)
	if (err == nil) != want {
		t.Fatalf("login %s/%s: err=%v, want success=%v", user, pass, err, want)
	}
}

// The binary, on the shipped mail.ini (ports moved to free ones so a running
// demo does not collide), opens all seven listeners and stops on SIGTERM.
func TestServeShippedConfig(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "mailsuite")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cfg := regexp.MustCompile(`listen = 127\.0\.0\.1:2\d+`).ReplaceAllString(shippedConfig(t), "listen = 127.0.0.1:0")
	path := writeTemp(t, cfg)
	cmd := exec.Command(bin, "serve", "-config", path)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	addrs := map[string]string{}
	sc := bufio.NewScanner(stderr)
	re := regexp.MustCompile(`msg=listening listener=(\w+) addr=(\S+)`)
	deadline := time.AfterFunc(30*time.Second, func() { cmd.Process.Kill() })
	defer deadline.Stop()
	for sc.Scan() && len(addrs) < 7 {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			addrs[m[1]] = m[2]
		}
	}
	if len(addrs) != 7 {
		t.Fatalf("listeners opened: %v", addrs)
	}
	for name, addr := range addrs {
		var c net.Conn
		var err error
		if strings.HasSuffix(name, "s") && name != "pop3" {
			c, err = tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
		} else {
			c, err = net.Dial("tcp", addr)
		}
		if err != nil {
			t.Errorf("%s at %s: %v", name, addr, err)
			continue
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if err != nil || !(strings.HasPrefix(line, "220 ") || strings.HasPrefix(line, "+OK") || strings.HasPrefix(line, "* OK")) {
			t.Errorf("%s greeting %q, %v", name, line, err)
		}
	}
	go func() {
		for sc.Scan() {
		}
	}()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("serve exited with %v after SIGTERM", err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(path), "data", "tls", "selfsigned.crt")); err != nil {
		t.Errorf("no self-signed certificate in ./data: %v", err)
	}
}

func TestQueueAndDKIMCommands(t *testing.T) {
	path := writeTemp(t, shippedConfig(t))
	code, stdout, stderr := runCmd(t, "", "queue", "list", "-config", path)
	if code != 0 || !strings.Contains(stdout, "queue is empty") {
		t.Fatalf("queue list: %d %q %q", code, stdout, stderr)
	}
	code, stdout, stderr = runCmd(t, "", "dkim", "generate", "example.com", "-config", path)
	if code != 0 || !regexp.MustCompile(`mail\._domainkey\.example\.com\.\s+IN\s+TXT\s+.*v=DKIM1`).MatchString(stdout) {
		t.Fatalf("dkim generate: %d %q %q", code, stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(path), "data", "dkim")); err != nil {
		t.Fatalf("no key directory in the config's data dir: %v", err)
	}
	if code, _, _ = runCmd(t, "", "dkim", "generate", "example.com", "-config", path); code == 0 {
		t.Fatal("dkim generate overwrote an existing key")
	}
	if code, _, _ = runCmd(t, "", "queue", "show", "no-such-id", "-config", path); code == 0 {
		t.Fatal("queue show of a missing ID succeeded")
	}
}
