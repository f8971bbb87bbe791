package relay

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// The admin functions of a second, never started Queue on the same
// directory stand in for the CLI in another process: the only channel to
// the running queue is the files (.wake and the envelopes).
func TestAdminRetryAndBounceReachRunningServer(t *testing.T) {
	d := startDNS(t)
	s := startSink(t, "127.0.0.1", 0, nil, func(s *sink) {
		s.rcpt = func(to string) error {
			if strings.HasPrefix(to, "never") {
				return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 4, 5}, Message: "busy"}
			}
			return nil
		}
		s.data = func(n int) error {
			if n == 1 {
				return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "later"}
			}
			return nil
		}
	})
	d.add(t, "remote.test. 60 IN MX 10 mx1.remote.test.", "mx1.remote.test. 60 IN A 127.0.0.1")
	local := &localSink{}
	o := testOptions(t.TempDir(), d, s.port())
	o.RetrySchedule = []time.Duration{time.Hour}
	o.ScanInterval = time.Hour // only a wake-up can make it retry soon
	o.DeliverLocal = local.deliver
	server := startQueue(t, o)
	id := enqueue(t, server, "alice@local.test", []string{"bob@remote.test"}, testMessage("alice@local.test", "m1@test"))
	waitFor(t, "first attempt", func() bool { i, err := server.Show(id); return err == nil && i.Attempts == 1 })

	admin, err := New(Options{DataDir: o.DataDir})
	if err != nil {
		t.Fatal(err)
	}
	list, err := admin.List()
	if err != nil || len(list) != 1 || list[0].ID != id || list[0].Size <= 0 {
		t.Fatalf("List = %+v, %v", list, err)
	}
	if r := list[0].Recipients[0]; r.State != StatePending || r.Status != "4.3.0" || list[0].Next.Before(time.Now().Add(50*time.Minute)) {
		t.Errorf("listed %+v next %v", r, list[0].Next)
	}
	info, err := admin.Show(id)
	if err != nil || !strings.Contains(info.Header, "Subject: hello m1@test") {
		t.Errorf("Show header %q, %v", info.Header, err)
	}
	if err := admin.Retry(id); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "delivery after Retry", func() bool { return len(s.messages()) == 1 })
	waitFor(t, "empty queue", func() bool { l, _ := admin.List(); return len(l) == 0 })

	// Bounce: the server sends the DSN and retires the message.
	id2 := enqueue(t, server, "alice@local.test", []string{"never@remote.test"}, testMessage("alice@local.test", "m2@test"))
	waitFor(t, "first attempt", func() bool { i, err := admin.Show(id2); return err == nil && i.Attempts == 1 })
	if err := admin.Bounce(id2); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "bounce", func() bool { return len(local.messages()) == 1 })
	r := parseDSN(t, local.messages()[0].Data).perRcpt[0]
	if r.Get("Status") != "5.0.0" || !strings.Contains(r.Get("Diagnostic-Code"), "administrator") {
		t.Errorf("admin bounce reported %v", r.Map())
	}
	waitFor(t, "message in failed/", func() bool {
		_, err := os.Stat(filepath.Join(o.DataDir, "queue", "failed", id2+".env"))
		return err == nil
	})
}

func TestAdminOnIdleQueue(t *testing.T) {
	q, err := New(Options{DataDir: t.TempDir(), Now: func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }})
	if err != nil {
		t.Fatal(err)
	}
	a := enqueue(t, q, "alice@local.test", []string{"bob@remote.test"}, testMessage("alice@local.test", "a@test"))
	b := enqueue(t, q, "alice@local.test", []string{"bob@remote.test"}, testMessage("alice@local.test", "b@test"))
	if n, err := q.Flush(); err != nil || n != 2 {
		t.Errorf("Flush = %d, %v; want 2", n, err)
	}
	if err := q.Delete(a); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Show(a); !errors.Is(err, ErrNotFound) {
		t.Errorf("Show after Delete: %v", err)
	}
	if err := q.Delete(a); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Delete: %v", err)
	}
	for _, bad := range []string{"../queue", "", ".wake", "x/y"} {
		if err := q.Retry(bad); !errors.Is(err, ErrNotFound) {
			t.Errorf("Retry(%q) = %v", bad, err)
		}
	}
	if l, _ := q.List(); len(l) != 1 || l[0].ID != b {
		t.Errorf("List after Delete = %+v", l)
	}
	// Held by a worker: admin calls report ErrBusy instead of waiting forever.
	l, err := q.spool.lock(b, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Retry(b); !errors.Is(err, ErrBusy) {
		t.Errorf("Retry of a locked message = %v, want ErrBusy", err)
	}
	l.unlock()
	if err := q.Retry(b); err != nil {
		t.Errorf("Retry after unlock = %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(q.opts.DataDir, "queue")); len(entries) != 5 { // b.{env,msg,lock}, .wake, failed
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("queue dir holds %q", names)
	}
}

func TestEnqueueValidates(t *testing.T) {
	q, err := New(Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		from string
		to   []string
	}{
		{"alice@local.test", nil},
		{"alice@local.test", []string{"bob"}},
		{"alice@local.test", []string{"bob@x.test>\r\nRSET"}},
		{"no-at", []string{"bob@x.test"}},
	} {
		if _, err := q.Enqueue(t.Context(), c.from, c.to, strings.NewReader("x\r\n")); err == nil {
			t.Errorf("Enqueue(%q, %q) accepted", c.from, c.to)
		}
	}
	// LF-only input is stored with CRLF.
	id := enqueue(t, q, "alice@local.test", []string{"bob@x.test"}, "Subject: a\n\nbody\r\nline\n")
	data, _ := os.ReadFile(q.spool.path(id, ".msg"))
	if string(data) != "Subject: a\r\n\r\nbody\r\nline\r\n" {
		t.Errorf("stored %q", data)
	}
	if entries, _ := os.ReadDir(filepath.Join(q.opts.DataDir, "queue")); len(entries) != 4 { // id.{env,msg,lock}, failed
		t.Errorf("failed Enqueues left files behind: %d entries", len(entries))
	}
}
