package integration

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The real binary, built once per test run into a temp dir that TestMain
// removes. Tests that need a process to die (SIGKILL, SIGTERM) use it.
var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func mailsuiteBinary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "mailsuite-integration-bin-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "mailsuite")
		out, err := exec.Command("go", "build", "-o", binPath, "../cmd/mailsuite").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build ../cmd/mailsuite: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// child is one `mailsuite serve` process.
type child struct {
	cmd   *exec.Cmd
	addrs map[string]string
	logs  *logBuffer
	done  chan struct{} // closed when the process has exited
	err   error         // Wait's result, valid after done
}

var reListening = regexp.MustCompile(`msg=listening listener=(\w+) addr=(\S+)`)

// startChild runs `mailsuite serve -config ini` and waits until all seven
// listeners logged their addresses.
func startChild(t testing.TB, ini string) *child {
	t.Helper()
	c := &child{
		cmd:   exec.Command(mailsuiteBinary(t), "serve", "-config", ini),
		addrs: map[string]string{},
		logs:  &logBuffer{},
		done:  make(chan struct{}),
	}
	stderr, err := c.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan map[string]string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		addrs := map[string]string{}
		for sc.Scan() {
			c.logs.Write(append(sc.Bytes(), '\n'))
			if m := reListening.FindStringSubmatch(sc.Text()); m != nil && addrs != nil {
				addrs[m[1]] = m[2]
				if len(addrs) == 7 {
					ready <- addrs
					addrs = nil
				}
			}
		}
		c.err = c.cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		c.kill()
		if t.Failed() {
			t.Logf("mailsuite serve (pid %d) log tail:\n%s", c.cmd.Process.Pid, c.logs.tail(6000))
		}
	})
	select {
	case c.addrs = <-ready:
	case <-c.done:
		t.Fatalf("mailsuite serve exited before listening: %v\n%s", c.err, c.logs.tail(4000))
	case <-time.After(30 * time.Second):
		t.Fatalf("mailsuite serve did not open its listeners within 30s\n%s", c.logs.tail(4000))
	}
	return c
}

// kill sends SIGKILL to this child (by its PID) and waits for it.
func (c *child) kill() {
	select {
	case <-c.done:
		return
	default:
	}
	c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.done
}

// term sends SIGTERM and waits up to limit for the process to exit.
func (c *child) term(limit time.Duration) error {
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-c.done:
		return c.err
	case <-time.After(limit):
		return fmt.Errorf("still running %v after SIGTERM", limit)
	}
}
