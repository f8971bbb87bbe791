package imapd

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"

	"github.com/mailsuite/mailsuite/accounts"
	"github.com/mailsuite/mailsuite/internal/authlimit"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// Transcripts for AUTHENTICATE PLAIN (with and without SASL-IR), LOGIN and
// CRAM-MD5 (RFC 3501 §6.2.2, RFC 4959, RFC 2195).
func TestAuthenticateMechanisms(t *testing.T) {
	e := startServer(t)

	rc := e.raw(t)
	rc.ok("AUTHENTICATE PLAIN " + b64("\x00"+alice+"\x00"+alicePW))
	rc.ok("SELECT INBOX")

	rc = e.raw(t)
	rc.send("A1 AUTHENTICATE PLAIN")
	rc.expect(`^\+`)
	rc.send(b64("\x00" + alice + "\x00wrong"))
	rc.expect(`^A1 NO \[AUTHENTICATIONFAILED\]`)

	rc.send("A2 AUTHENTICATE LOGIN")
	rc.expect(`^\+ ` + b64("Username:") + `$`)
	rc.send(b64(alice))
	rc.expect(`^\+ ` + b64("Password:") + `$`)
	rc.send(b64(alicePW))
	rc.expect(`^A2 OK `)

	rc = e.raw(t)
	rc.send("A1 AUTHENTICATE CRAM-MD5")
	line := rc.expect(`^\+ `)
	chal, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(line, "+ "))
	if err != nil || !strings.Contains(string(chal), "imap.example.org") {
		t.Fatalf("challenge %q (%v)", chal, err)
	}
	mac := hmac.New(md5.New, []byte(alicePW))
	mac.Write(chal)
	rc.send(b64(alice + " " + hex.EncodeToString(mac.Sum(nil))))
	rc.expect(`^A1 OK `)

	rc = e.raw(t)
	rc.send("A1 AUTHENTICATE PLAIN")
	rc.expect(`^\+`)
	rc.send("*")
	rc.expect(`^A1 BAD `)
	if _, done := rc.cmd("AUTHENTICATE GSSAPI"); !strings.HasPrefix(done, "NO") {
		t.Errorf("unknown mechanism: %s", done)
	}

	// imapclient's PLAIN over implicit TLS.
	e2 := startServer(t, func(o *Options) { o.TLSMode = TLSImplicit; o.AllowInsecureAuth = false })
	c, err := imapclient.DialTLS(e2.addr, &imapclient.Options{TLSConfig: e2.clientTLS})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Authenticate(sasl.NewPlainClient("", alice, alicePW)); err != nil {
		t.Fatalf("AUTHENTICATE over IMAPS: %v", err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
}

// Failures feed the shared limiter; a locked-out IP gets [UNAVAILABLE]
// without its credentials being checked.
func TestAuthThrottle(t *testing.T) {
	lim := authlimit.New(authlimit.Options{FreeFailures: 2, Delay: time.Millisecond, MaxDelay: time.Millisecond, LockoutFailures: 3, Window: time.Minute})
	e := startServer(t, func(o *Options) { o.AuthLimit = lim })
	rc := e.raw(t)
	for i := 0; i < 3; i++ {
		if _, done := rc.cmd("LOGIN " + alice + " wrong"); !strings.HasPrefix(done, "NO [AUTHENTICATIONFAILED]") {
			t.Fatalf("failure %d: %s", i, done)
		}
	}
	if _, done := rc.cmd(`LOGIN alice@example.org "` + alicePW + `"`); !strings.HasPrefix(done, "NO [UNAVAILABLE]") {
		t.Fatalf("locked out: %s", done)
	}
	if wait, ok := lim.Check(net.IPv4(127, 0, 0, 1)); ok {
		t.Fatalf("limiter not locked: %v", wait)
	}
}

// A user removed from the account list loses their open sessions.
func TestRemovedUserDisconnected(t *testing.T) {
	e := startServer(t)
	rc := e.raw(t)
	rc.ok(`LOGIN alice@example.org "` + alicePW + `"`)
	rcBob := e.raw(t)
	rcBob.ok(`LOGIN bob@example.org "` + bobPW + `"`)
	cfg := e.cfg
	cfg.Users = cfg.Users[1:] // drop alice
	if err := e.dir.Update(cfg); err != nil {
		t.Fatal(err)
	}
	rc.expect(`^\* BYE `)
	rcBob.ok("NOOP")
}

// OnConnect can refuse a client before the greeting.
func TestOnConnectRefuses(t *testing.T) {
	e := startServer(t, func(o *Options) { o.Hooks.OnConnect = func(net.Addr) bool { return false } })
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if n, err := c.Read(make([]byte, 10)); err == nil {
		t.Fatalf("refused connection got %d bytes", n)
	}
}

// Shutdown lets an idle session go with BYE and returns.
func TestShutdown(t *testing.T) {
	e := startServer(t)
	rc := e.raw(t)
	rc.ok(`LOGIN alice@example.org "` + alicePW + `"`)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	rc.expect(`^\* BYE `)
	if _, err := net.DialTimeout("tcp", e.addr, time.Second); err == nil {
		t.Error("still accepting after Shutdown")
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	dir, _ := accounts.New(accounts.Config{Domains: []string{"example.org"}})
	if _, err := New(Options{}); err == nil {
		t.Error("New without Accounts/Store succeeded")
	}
	e := startServer(t)
	if _, err := New(Options{Accounts: dir, Store: e.store, TLSMode: TLSImplicit}); err == nil {
		t.Error("TLSImplicit without TLSConfig accepted")
	}
}

// Shutdown while a command is between its session method and its tagged
// reply (here go-imap still reads the APPEND literal our Append refused):
// the client gets the tagged reply first, then BYE (RFC 3501 §7.1.5).
// Closing before the reply would leave a client unsure whether an APPEND,
// COPY or EXPUNGE took effect.
func TestShutdownAfterTaggedReply(t *testing.T) {
	replied := make(chan struct{}, 1)
	e := startServer(t, func(o *Options) {
		o.Hooks.OnReply = func(_, line string) {
			if strings.Contains(line, "TRYCREATE") {
				replied <- struct{}{}
			}
		}
	})
	rc := e.raw(t)
	rc.ok(`LOGIN alice@example.org "` + alicePW + `"`)
	msg := testMsg("late", "x")
	rc.send(fmt.Sprintf("A1 APPEND NoSuchFolder {%d}", len(msg)))
	rc.expect(`^\+ `)
	select {
	case <-replied: // Append returned; go-imap waits for the literal
	case <-time.After(5 * time.Second):
		t.Fatal("Append did not return")
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- e.srv.Shutdown(ctx)
	}()
	if !waitFor(5*time.Second, func() bool {
		e.srv.mu.Lock()
		defer e.srv.mu.Unlock()
		for sess := range e.srv.sessions {
			sess.mu.Lock()
			stopped := sess.stopped
			sess.mu.Unlock()
			if !stopped {
				return false
			}
		}
		return true
	}) {
		t.Fatal("Shutdown did not reach the session")
	}
	time.Sleep(50 * time.Millisecond) // a premature BYE would be out by now
	io.WriteString(rc.c, msg+"\r\n")
	var got []string
	for len(got) < 4 {
		rc.c.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, err := rc.r.ReadString('\n')
		if err != nil {
			break
		}
		got = append(got, strings.TrimRight(line, "\r\n"))
	}
	if len(got) != 2 || !strings.HasPrefix(got[0], "A1 NO [TRYCREATE]") || !strings.HasPrefix(got[1], "* BYE ") {
		t.Errorf("after shutdown: %q, want the tagged NO, then BYE", got)
	}
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}
