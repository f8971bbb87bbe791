package integration

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailsuite/mailsuite"
)

// shutdownGrace is [server] shutdown_grace in these tests.
const shutdownGrace = 2 * time.Second

func shutdownConfig() string {
	return strings.Replace(configWith(officeAliases, "alice@example.com", "bob@example.com", "dave@example.com"),
		"shutdown_grace = 5s", "shutdown_grace = "+shutdownGrace.String(), 1)
}

// SIGTERM to the real binary while clients are in the middle of DATA: each
// transfer either ends with 250 and is stored, or gets 4xx / a closed
// connection; never a 250 for a message that is not stored. Transfers that
// end inside the grace period are accepted (Suite.Shutdown's contract);
// one that stalls is cut off. The process exits cleanly within the grace
// period.
func TestGracefulShutdownSIGTERM(t *testing.T) {
	dir := t.TempDir()
	ini := filepath.Join(dir, "mail.ini")
	if err := os.WriteFile(ini, []byte(shutdownConfig()), 0o600); err != nil {
		t.Fatal(err)
	}
	c := startChild(t, ini)
	tc := clientTLS(t, filepath.Join(dir, "data"))

	// alice has mail, sits in IDLE on her desktop, and her phone has
	// marked it deleted but not yet said QUIT when the signal comes.
	seed := newMessage("someone@example.net", "alice@example.com", "keep me", 1000)
	if err := sendMX(c.addrs["smtp"], tc, "someone@example.net", []string{"alice@example.com"}, seed.Raw); err != nil {
		t.Fatal(err)
	}
	idle, err := startIdle(c.addrs["imaps"], tc, "alice@example.com", users["alice@example.com"])
	if err != nil {
		t.Fatal(err)
	}
	defer idle.c.Close()
	phone, err := dialPOP3S(c.addrs["pop3s"], tc, "alice@example.com", users["alice@example.com"])
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	if _, err := phone.cmd("DELE 1"); err != nil {
		t.Fatal(err)
	}

	// ... and her desktop is halfway through saving a draft (APPEND).
	draft := newMessage("alice@example.com", "bob@example.com", "draft", 40_000)
	appender, err := dialIMAPS(c.addrs["imaps"], tc, "alice@example.com", users["alice@example.com"], nil)
	if err != nil {
		t.Fatal(err)
	}
	defer appender.Close()
	appendCmd := appender.Append("Drafts", int64(len(draft.Raw)), &imap.AppendOptions{Flags: []imap.Flag{imap.FlagDraft}})
	if _, err := appendCmd.Write(draft.Raw[:len(draft.Raw)/2]); err != nil {
		t.Fatal(err)
	}
	appendDone := make(chan error, 1)

	outcomes := shutdownDuringData(t, c.addrs["smtp"], func() {
		start := time.Now()
		go func() {
			time.Sleep(20 * time.Millisecond)
			appendCmd.Write(draft.Raw[len(draft.Raw)/2:])
			appendCmd.Close()
			_, err := appendCmd.Wait()
			appendDone <- err
		}()
		if err := c.term(shutdownGrace + 5*time.Second); err != nil {
			t.Errorf("after SIGTERM: %v", err)
		}
		t.Logf("process exited %v after SIGTERM", time.Since(start).Round(time.Millisecond))
	})
	appendErr := <-appendDone
	t.Logf("APPEND during shutdown: %v", appendErr)
	select {
	case <-idle.c.Closed():
	case <-time.After(time.Second):
		t.Error("the IDLE session is still open after the server exited")
	}
	if err := readUntilClosed(phone, time.Second); err != nil {
		t.Errorf("POP3 session after the server exited: %v", err)
	}

	c2 := startChild(t, ini)
	verifyShutdownOutcomes(t, c2.addrs["imaps"], tc, outcomes)
	// RFC 1939 §6: deletions happen only in the UPDATE state, after QUIT.
	ic, err := dialIMAPS(c2.addrs["imaps"], tc, "alice@example.com", users["alice@example.com"], nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ic.Close()
	_, msgs, err := fetchAll(ic, "INBOX", true)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 {
		t.Errorf("alice's INBOX holds %d messages after a POP3 session was cut before QUIT, want her 1", len(msgs))
	} else if id, err := checkMessage(msgs[0].Body); err != nil || id != seed.ID {
		t.Errorf("alice's message: %q %v", id, err)
	}
	// The draft: saved whole if the server said OK; if not, at most whole.
	_, drafts, err := fetchAll(ic, "Drafts", true)
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case appendErr == nil && len(drafts) != 1:
		t.Errorf("APPEND got OK but Drafts holds %d messages", len(drafts))
	case len(drafts) > 1:
		t.Errorf("Drafts holds %d messages, at most 1 was appended", len(drafts))
	case len(drafts) == 1:
		if id, err := checkMessage(drafts[0].Body); err != nil || id != draft.ID {
			t.Errorf("the draft in Drafts: %q %v", id, err)
		}
	}
	c2.term(10 * time.Second)
}

// The same through Suite.Shutdown, as an embedder stops the suite.
func TestGracefulShutdownInProcess(t *testing.T) {
	dir := t.TempDir()
	ini := filepath.Join(dir, "mail.ini")
	if err := os.WriteFile(ini, []byte(shutdownConfig()), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := mailsuite.LoadConfig(ini)
	if err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	s, err := mailsuite.New(cfg, mailsuite.Options{Logger: newTestLogger(logs)})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	outcomes := shutdownDuringData(t, s.Addr("smtp").String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Logf("Shutdown: %v", err)
		}
	})
	if t.Failed() {
		t.Logf("suite log:\n%s", logs.tail(6000))
	}
	h := startSuiteIn(t, dir, shutdownConfig(), mailsuite.Options{})
	verifyShutdownOutcomes(t, h.addr("imaps"), h.tls, outcomes)
}

type dataOutcome struct {
	name  string
	id    string
	acked bool
	reply string
}

// shutdownDuringData starts four transfers, sends half of each message,
// calls stop (which returns once the server is down) and meanwhile lets
// each client finish at a different moment: at once, within the grace
// period, never (stalls), and after the grace period.
func shutdownDuringData(t *testing.T, addr string, stop func()) []*dataOutcome {
	t.Helper()
	delays := []struct {
		name  string
		delay time.Duration // after stop began; negative: never finish
	}{
		{"finishes at once", 20 * time.Millisecond},
		{"finishes within grace", shutdownGrace / 3},
		{"stalls", -1},
		{"finishes after grace", shutdownGrace + 500*time.Millisecond},
	}
	var outcomes []*dataOutcome
	var conns []*rawSMTP
	for _, d := range delays {
		m := newMessage("someone@example.net", "bob@example.com", d.name, 60_000)
		rc, err := dialRawSMTP(addr)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.conn.Close()
		if err := rc.beginData("someone@example.net", "bob@example.com"); err != nil {
			t.Fatal(err)
		}
		data := dotStuff(m.Raw)
		if err := rc.write(data[:len(data)/2]); err != nil {
			t.Fatal(err)
		}
		rc.rest = data[len(data)/2:]
		conns = append(conns, rc)
		outcomes = append(outcomes, &dataOutcome{name: d.name, id: m.ID})
	}
	var wg sync.WaitGroup
	for i, d := range delays {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o, rc := outcomes[i], conns[i]
			if d.delay >= 0 {
				time.Sleep(d.delay)
				if err := rc.write(append(rc.rest, ".\r\n"...)); err != nil {
					o.reply = "write: " + err.Error()
					return
				}
			}
			line, err := rc.readReply(shutdownGrace + 5*time.Second)
			o.reply = line
			if err != nil {
				o.reply = fmt.Sprintf("%q then %v", line, err)
			}
			o.acked = strings.HasPrefix(line, "250")
		}()
	}
	time.Sleep(50 * time.Millisecond) // let the halves reach the server
	stop()
	// The listener is gone: a new client cannot start a transfer.
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		line, _ := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if strings.HasPrefix(line, "220") {
			t.Errorf("a new connection was greeted after shutdown: %q", line)
		}
	}
	wg.Wait()
	for _, o := range outcomes {
		t.Logf("%-22s acked=%v reply=%s", o.name, o.acked, o.reply)
		if o.name == "stalls" && o.acked {
			t.Errorf("a transfer that never ended got %q", o.reply)
		}
		// Suite.Shutdown's contract: transfers in progress may finish
		// until the grace period ends.
		if strings.Contains(o.name, "at once") || strings.Contains(o.name, "within grace") {
			if !o.acked {
				t.Errorf("%s: a transfer that ended inside the grace period got %q, want 250", o.name, o.reply)
			}
		}
		if !o.acked && strings.HasPrefix(o.reply, "5") {
			t.Errorf("%s: permanent failure %q for a shutdown (want 4xx or a closed connection)", o.name, o.reply)
		}
	}
	return outcomes
}

// verifyShutdownOutcomes: every acked message is stored once and whole;
// unacknowledged ones, if stored at all, are whole; nothing else is there.
func verifyShutdownOutcomes(t *testing.T, imapsAddr string, tc *tls.Config, outcomes []*dataOutcome) {
	t.Helper()
	c, err := dialIMAPS(imapsAddr, tc, "bob@example.com", users["bob@example.com"], nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, msgs, err := fetchAll(c, "INBOX", true)
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, m := range msgs {
		id, err := checkMessage(m.Body)
		if err != nil {
			t.Errorf("stored message damaged: %v", err)
			continue
		}
		count[id]++
	}
	known := map[string]bool{}
	for _, o := range outcomes {
		known[o.id] = true
		switch {
		case o.acked && count[o.id] != 1:
			t.Errorf("%s: got 250 but is stored %d times", o.name, count[o.id])
		case !o.acked && count[o.id] > 0:
			t.Logf("%s: stored without a 250 (allowed: the client will retry)", o.name)
		}
	}
	for id := range count {
		if !known[id] {
			t.Errorf("unexpected message %s in INBOX", id)
		}
	}
}
