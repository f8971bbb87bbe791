package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mailsuite/mailsuite/internal/atomicfile"
)

const crashHelperEnv = "RELAY_CRASH_HELPER"

// TestHelperProcess is the server TestCrashResume kills: it enqueues six
// messages, each for two domains, and delivers until SIGKILLed.
func TestHelperProcess(t *testing.T) {
	if os.Getenv(crashHelperEnv) != "1" {
		t.Skip("helper process for TestCrashResume")
	}
	port, _ := strconv.Atoi(os.Getenv("RELAY_MX_PORT"))
	q, err := New(Options{
		DataDir: os.Getenv("RELAY_DATA"), Hostname: "mail.local.test", LocalDomains: []string{"local.test"},
		DNSServer: os.Getenv("RELAY_DNS"), MXPort: port, Workers: 2,
		RetrySchedule: []time.Duration{100 * time.Millisecond},
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err == nil {
		err = q.Start()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	for i := range 6 {
		enqueue(t, q, "alice@local.test", []string{"bob@a.test", "carol@b.test"}, testMessage("alice@local.test", fmt.Sprintf("m%d@test", i)))
	}
	time.Sleep(30 * time.Second) // the parent kills us long before
	os.Exit(3)
}

func TestCrashResume(t *testing.T) {
	d := startDNS(t)
	gate := make(chan struct{})
	s := startSink(t, "127.0.0.1", 0, nil, func(s *sink) { s.gate, s.after = gate, 3 })
	d.add(t,
		"a.test. 60 IN MX 10 mx.a.test.", "mx.a.test. 60 IN A 127.0.0.1",
		"b.test. 60 IN MX 10 mx.b.test.", "mx.b.test. 60 IN A 127.0.0.1",
	)
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), crashHelperEnv+"=1", "RELAY_DATA="+dir, "RELAY_DNS="+d.addr,
		"RELAY_MX_PORT="+strconv.Itoa(s.port()))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	// Kill while deliveries hang in DATA (the sink's gate): mid-flight.
	waitFor(t, "deliveries in flight", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.blocked >= 1
	})
	time.Sleep(300 * time.Millisecond) // let accepted transactions save their state
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	killed = true
	before := s.counts()
	if len(before) == 0 || len(before) >= 12 {
		t.Fatalf("%d deliveries before the kill: not mid-flight", len(before))
	}

	s.mu.Lock()
	close(gate) // blocked sessions of the dead server get 451 and are not counted
	s.gate = nil
	s.mu.Unlock()

	q := startQueue(t, testOptions(dir, d, s.port()))
	waitFor(t, "all 12 deliveries after restart", func() bool {
		l, _ := q.List()
		return len(s.counts()) == 12 && len(l) == 0
	})
	for k, n := range s.counts() {
		if n != 1 {
			t.Errorf("%s delivered %d times", k, n)
		}
	}
	t.Logf("%d of 12 delivered before SIGKILL", len(before))
}

func TestShutdownCutsOffAndResumes(t *testing.T) {
	d := startDNS(t)
	gate := make(chan struct{})
	s := startSink(t, "127.0.0.1", 0, nil, func(s *sink) { s.gate, s.after = gate, 0 })
	d.add(t, "remote.test. 60 IN MX 10 mx1.remote.test.", "mx1.remote.test. 60 IN A 127.0.0.1")
	o := testOptions(t.TempDir(), d, s.port())
	q, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Start(); err != nil {
		t.Fatal(err)
	}
	id := enqueue(t, q, "alice@local.test", []string{"bob@remote.test"}, testMessage("alice@local.test", "m1@test"))
	waitFor(t, "delivery in flight", func() bool { s.mu.Lock(); defer s.mu.Unlock(); return s.blocked == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := q.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want DeadlineExceeded", err)
	}
	if err := q.Start(); !errors.Is(err, ErrClosed) {
		t.Errorf("Start after Shutdown = %v", err)
	}
	// The cut-off attempt counts for nothing: the recipient is untouched.
	e, err := q.spool.readEnvelope(id)
	if err != nil {
		t.Fatal(err)
	}
	if r := e.Recipients[0]; e.Attempts != 0 || r.State != StatePending || r.Status != "" {
		t.Errorf("after cut-off: attempts %d, %+v", e.Attempts, r)
	}
	s.mu.Lock()
	close(gate)
	s.gate = nil
	s.mu.Unlock()
	startQueue(t, o)
	waitFor(t, "delivery after restart", func() bool { return len(s.messages()) == 1 })
}

// When the envelope cannot be saved (disk full), the message is held off
// for a retry delay instead of being retried in a tight loop.
func TestSaveFailureHoldsOff(t *testing.T) {
	d := startDNS(t)
	s := startSink(t, "127.0.0.1", 0, nil, nil)
	d.add(t, "remote.test. 60 IN MX 10 mx1.remote.test.", "mx1.remote.test. 60 IN A 127.0.0.1")
	o := testOptions(t.TempDir(), d, s.port())
	o.RetrySchedule = []time.Duration{time.Hour}
	logs := &logBuf{}
	o.Logger = slogTo(logs)
	q, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	enqueue(t, q, "alice@local.test", []string{"bob@remote.test"}, testMessage("alice@local.test", "m1@test"))
	q.spool.aw.Fail = func(step atomicfile.Step, path string) error {
		if step == atomicfile.StepWrite && strings.HasSuffix(path, ".env") {
			return syscall.ENOSPC
		}
		return nil
	}
	if err := q.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	waitFor(t, "the delivery", func() bool { return len(s.messages()) == 1 })
	time.Sleep(300 * time.Millisecond)
	s.mu.Lock()
	datas := s.datas
	s.mu.Unlock()
	if datas != 1 {
		t.Errorf("%d DATA commands within 300ms of a save failure, want 1", datas)
	}
	if !strings.Contains(logs.String(), "no space left on device") {
		t.Errorf("save failure not logged:\n%s", logs.String())
	}
}
