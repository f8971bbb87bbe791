package imapd

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mailsuite/mailsuite/mailstore"
)

// Speed targets (Dovecot on this machine, for reference): LOGIN+SELECT
// 23 ms (10k, warm) / 181 ms (100k, warm) / 1.1 s (100k, first time);
// UID FETCH 1:* (FLAGS) 5 / 43 ms; FETCH 1:* (ENVELOPE) 52 / 512 ms warm;
// UID SEARCH SUBJECT 17 / 162 ms; about 545 kB per IDLE connection.

// fillFolder writes n messages straight into alice's INBOX cur/ (as another
// program would leave them; no fsync, it is a fixture). The store has not
// indexed them yet: the first SELECT does.
func fillFolder(b *testing.B, e *testEnv, n int) {
	b.Helper()
	u, err := e.store.User(alice)
	if err != nil {
		b.Fatal(err)
	}
	cur := filepath.Join(e.root, "mail", "example.org", "alice", "cur")
	if _, err := os.Stat(cur); err != nil {
		b.Fatalf("maildir layout changed: %v", err)
	}
	for i := 0; i < n; i++ {
		msg := fmt.Sprintf("From: User %d <user%d@example.net>\r\nTo: Alice <alice@example.org>\r\n"+
			"Subject: Report %d about topic %d\r\nDate: Mon, 02 Jan 2026 15:04:05 +0000\r\n"+
			"Message-ID: <%d.bench@example.net>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"+
			"Hello,\r\nthis is message %d.\r\n", i%97, i%97, i, i%13, i, i)
		flags := ""
		if i%3 == 0 {
			flags = "S"
		}
		name := fmt.Sprintf("%d.M%dP1Q%d.bench,S=%d,W=%d:2,%s", 1700000000+i/100, i, i, len(msg), len(msg), flags)
		if err := os.WriteFile(filepath.Join(cur, name), []byte(msg), 0o600); err != nil {
			b.Fatal(err)
		}
	}
	_ = u
}

// benchConn is a minimal plaintext loopback client: it sends a command and
// reads up to its tagged reply, counting untagged lines, so the client's
// own parsing does not dominate the measurement.
type benchConn struct {
	c   net.Conn
	r   *bufio.Reader
	tag int
}

func dialBench(b *testing.B, addr string) *benchConn {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	bc := &benchConn{c: c, r: bufio.NewReaderSize(c, 64<<10)}
	if _, err := bc.r.ReadString('\n'); err != nil {
		b.Fatal(err)
	}
	return bc
}

func (bc *benchConn) do(b *testing.B, cmd string) int {
	bc.tag++
	tag := "B" + strconv.Itoa(bc.tag) + " "
	if _, err := io.WriteString(bc.c, tag+cmd+"\r\n"); err != nil {
		b.Fatal(err)
	}
	n := 0
	for {
		line, err := bc.r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			b.Fatal(err)
		}
		if strings.HasPrefix(string(line), tag) {
			if !strings.HasPrefix(string(line[len(tag):]), "OK") {
				b.Fatalf("%s: %s", cmd, line)
			}
			return n
		}
		n++
	}
}

// cpuTime is the process's user+system CPU time: on a shared, loaded
// machine it says more than wall time (it includes the small client here).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// withCPU reports CPU time per op beside wall time.
func withCPU(f func(b *testing.B)) func(b *testing.B) {
	return func(b *testing.B) {
		c0 := cpuTime()
		f(b)
		b.ReportMetric(float64((cpuTime()-c0).Microseconds())/1000/float64(b.N), "cpu-ms/op")
	}
}

func BenchmarkFolder(b *testing.B) {
	for _, n := range []int{10000, 100000} {
		if testing.Short() && n > 10000 {
			continue
		}
		// The store's default poll interval, as in production (tests use 50 ms).
		e := startServer(b, func(o *mailstore.Options) { o.PollInterval = 0 })
		fillFolder(b, e, n)
		login := `LOGIN alice@example.org "` + alicePW + `"`

		// First-time costs happen once, so they are measured here and
		// reported as metrics (a sub-benchmark body may run several times).
		// LOGIN+SELECT-first: the store indexes n files it has never seen
		// (assigns UIDs, writes dovecot-uidlist). FETCH-ENVELOPE-cold:
		// every file is parsed and our cache filled.
		start, cpu0 := time.Now(), cpuTime()
		bc := dialBench(b, e.addr)
		bc.do(b, login)
		bc.do(b, "SELECT INBOX")
		firstSelect, firstSelectCPU := time.Since(start), cpuTime()-cpu0
		start, cpu0 = time.Now(), cpuTime()
		if got := bc.do(b, "FETCH 1:* (ENVELOPE)"); got != n {
			b.Fatalf("%d responses", got)
		}
		coldEnv, coldEnvCPU := time.Since(start), cpuTime()-cpu0
		b.Run(fmt.Sprintf("%dk/LOGIN+SELECT-first", n/1000), func(b *testing.B) {
			b.ReportMetric(float64(firstSelect.Milliseconds()), "ms-once")
			b.ReportMetric(float64(firstSelectCPU.Milliseconds()), "cpu-ms-once")
		})
		b.Run(fmt.Sprintf("%dk/FETCH-ENVELOPE-cold", n/1000), func(b *testing.B) {
			b.ReportMetric(float64(coldEnv.Milliseconds()), "ms-once")
			b.ReportMetric(float64(coldEnvCPU.Milliseconds()), "cpu-ms-once")
		})
		b.Run(fmt.Sprintf("%dk/LOGIN+SELECT", n/1000), withCPU(func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				c := dialBench(b, e.addr)
				c.do(b, login)
				c.do(b, "SELECT INBOX")
				c.c.Close()
			}
		}))
		b.Run(fmt.Sprintf("%dk/UID-FETCH-FLAGS", n/1000), withCPU(func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if got := bc.do(b, "UID FETCH 1:* (FLAGS)"); got != n {
					b.Fatalf("%d responses", got)
				}
			}
		}))
		b.Run(fmt.Sprintf("%dk/FETCH-ENVELOPE", n/1000), withCPU(func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if got := bc.do(b, "FETCH 1:* (ENVELOPE)"); got != n {
					b.Fatalf("%d responses", got)
				}
			}
		}))
		b.Run(fmt.Sprintf("%dk/FETCH-BODYSTRUCTURE", n/1000), withCPU(func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if got := bc.do(b, "FETCH 1:* (BODYSTRUCTURE)"); got != n {
					b.Fatalf("%d responses", got)
				}
			}
		}))
		b.Run(fmt.Sprintf("%dk/UID-FETCH-HEADER-FIELDS", n/1000), withCPU(func(b *testing.B) {
			// What Thunderbird asks for new messages: opens every file.
			for i := 0; i < b.N; i++ {
				if got := bc.do(b, "UID FETCH 1:* (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (From To Cc Subject Date Message-ID In-Reply-To Content-Type)])"); got < n {
					b.Fatalf("%d lines", got)
				}
			}
		}))
		b.Run(fmt.Sprintf("%dk/UID-SEARCH-SUBJECT", n/1000), withCPU(func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if got := bc.do(b, `UID SEARCH SUBJECT "topic 7"`); got != 1 {
					b.Fatalf("%d responses", got)
				}
			}
		}))
		bc.c.Close()
	}
}

// BenchmarkIdleMemory opens 1,000 TLS connections that log in, select
// INBOX and IDLE, from a child process (so client memory is not counted),
// and reports the server's heap+stack growth per connection.
func BenchmarkIdleMemory(b *testing.B) {
	const conns = 1000
	e := startServer(b, func(o *Options) {
		o.TLSMode = TLSImplicit
		o.MaxConns, o.MaxConnsPerIP = -1, -1
	})
	e.deliver(b, testMsg("hello", "x"), alice)
	for i := 0; i < b.N; i++ {
		before := heapAndStack()
		cmd := exec.Command(os.Args[0], "-test.run=^TestIdleHelper$")
		cmd.Env = append(os.Environ(), "IMAPD_IDLE_HELPER="+e.addr, "IMAPD_IDLE_CONNS="+strconv.Itoa(conns), "IMAPD_IDLE_CERT="+e.certFile)
		stdin, _ := cmd.StdinPipe()
		out, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		line, err := bufio.NewReader(out).ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "ready") {
			b.Fatalf("helper: %q %v", line, err)
		}
		after := heapAndStack()
		b.ReportMetric(float64(after-before)/conns, "bytes/conn")
		stdin.Close()
		cmd.Wait()
	}
}

func heapAndStack() int64 {
	var ms runtime.MemStats
	for i := 0; i < 3; i++ {
		runtime.GC()
		time.Sleep(20 * time.Millisecond)
	}
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse + ms.StackInuse)
}

// TestIdleHelper is BenchmarkIdleMemory's client process; it does nothing
// in a normal test run.
func TestIdleHelper(t *testing.T) {
	addr := os.Getenv("IMAPD_IDLE_HELPER")
	if addr == "" {
		t.Skip("helper process for BenchmarkIdleMemory")
	}
	n, _ := strconv.Atoi(os.Getenv("IMAPD_IDLE_CONNS"))
	pem, err := os.ReadFile(os.Getenv("IMAPD_IDLE_CERT"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := clientTLSFromPEM(pem)
	var keep []net.Conn
	for i := 0; i < n; i++ {
		c, err := tls.Dial("tcp", addr, cfg)
		if err != nil {
			t.Fatal(err)
		}
		keep = append(keep, c)
		r := bufio.NewReader(c)
		io.WriteString(c, "a LOGIN alice@example.org \""+alicePW+"\"\r\nb SELECT INBOX\r\nc IDLE\r\n")
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(line, "+ ") {
				break
			}
		}
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	for _, c := range keep {
		c.Close()
	}
}
