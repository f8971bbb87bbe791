package imapd

import (
	"io"
	"strings"
	"testing"
	"time"
)

// Transcript: capabilities and the TLS rule before and after STARTTLS.
func TestGreetingAndStartTLS(t *testing.T) {
	// Remote-like rule: no insecure auth at all.
	e := startServer(t, func(o *Options) { o.AllowInsecureAuth = false })
	rc := e.raw(t)
	caps := rc.ok("CAPABILITY")
	if !hasLine(caps, `LOGINDISABLED`) || !hasLine(caps, `STARTTLS`) || hasLine(caps, `AUTH=`) {
		t.Fatalf("plaintext capabilities: %q", caps)
	}
	if _, done := rc.cmd(`LOGIN alice@example.org "` + alicePW + `"`); !strings.HasPrefix(done, "NO [PRIVACYREQUIRED]") {
		t.Fatalf("plaintext LOGIN: %s", done)
	}
	rc.startTLS(e.clientTLS)
	caps = rc.ok("CAPABILITY")
	for _, want := range []string{"IMAP4rev1", "IMAP4rev2", "AUTH=PLAIN", "AUTH=LOGIN", "AUTH=CRAM-MD5", "SASL-IR"} {
		if !hasLine(caps, " "+want) {
			t.Errorf("TLS capabilities lack %s: %q", want, caps)
		}
	}
	if hasLine(caps, "LOGINDISABLED") || hasLine(caps, "STARTTLS") {
		t.Errorf("after STARTTLS: %q", caps)
	}
	rc.ok(`LOGIN alice@example.org "` + alicePW + `"`)
	caps = rc.ok("CAPABILITY")
	for _, want := range []string{"IDLE", "UIDPLUS", "MOVE", "NAMESPACE", "UNSELECT", "ENABLE", "ESEARCH", "SEARCHRES",
		"LIST-EXTENDED", "LIST-STATUS", "SPECIAL-USE", "CREATE-SPECIAL-USE", "CHILDREN", "STATUS=SIZE",
		"APPENDLIMIT=52428800", "LITERAL+", "UTF8=ACCEPT", "BINARY"} {
		if !hasLine(caps, " "+regexpQuote(want)+"( |$)") {
			t.Errorf("authenticated capabilities lack %s: %q", want, caps)
		}
	}
}

func regexpQuote(s string) string {
	return strings.NewReplacer("+", `\+`, ".", `\.`).Replace(s)
}

// AllowInsecureAuth applies to loopback: the test connects from 127.0.0.1.
func TestInsecureAuthLoopback(t *testing.T) {
	e := startServer(t)
	rc := e.raw(t)
	caps := rc.ok("CAPABILITY")
	if hasLine(caps, "LOGINDISABLED") || !hasLine(caps, "AUTH=PLAIN") {
		t.Fatalf("loopback with AllowInsecureAuth: %q", caps)
	}
	rc.ok(`LOGIN alice@example.org "` + alicePW + `"`)

	// TLSRequired ignores AllowInsecureAuth even on loopback.
	e2 := startServer(t, func(o *Options) { o.TLSMode = TLSRequired })
	rc2 := e2.raw(t)
	if caps := rc2.ok("CAPABILITY"); !hasLine(caps, "LOGINDISABLED") {
		t.Fatalf("TLSRequired: %q", caps)
	}
}

func TestLoginFailureAndHooks(t *testing.T) {
	e := startServer(t)
	rc := e.raw(t)
	if _, done := rc.cmd(`LOGIN alice@example.org wrong`); !strings.HasPrefix(done, "NO [AUTHENTICATIONFAILED]") {
		t.Fatalf("bad password: %s", done)
	}
	rc.ok(`LOGIN alice@example.org "` + alicePW + `"`)
	rc.ok("SELECT INBOX")
	if _, done := rc.cmd("SELECT nosuch"); !strings.HasPrefix(done, "NO [NONEXISTENT]") {
		t.Fatalf("SELECT nosuch: %s", done)
	}
	rc.ok("LOGOUT")
	if !waitFor(2e9, func() bool {
		tr := e.traceSnapshot()
		return len(tr) > 0 && tr[len(tr)-1] == "CLOSE"
	}) {
		t.Fatalf("no OnClose: %q", e.traceSnapshot())
	}
	tr := strings.Join(e.traceSnapshot(), "\n")
	for _, want := range []string{
		`C LOGIN "alice@example.org" ***`, "S NO [AUTHENTICATIONFAILED]", "AUTH alice@example.org LOGIN false",
		"AUTH alice@example.org LOGIN true", "C SELECT INBOX", "S OK", "C SELECT nosuch", "S NO [NONEXISTENT]",
	} {
		if !strings.Contains(tr, want) {
			t.Errorf("trace lacks %q:\n%s", want, tr)
		}
	}
	if strings.Contains(tr, alicePW) || strings.Contains(tr, "wrong") {
		t.Errorf("trace leaks a password:\n%s", tr)
	}
}

// Commands pipelined after STARTTLS in the same packet must not be
// executed as if they came over TLS (the STARTTLS injection class of bugs,
// RFC 3501 §6.2.1): go-imap feeds them to the TLS handshake, which fails.
func TestStartTLSInjection(t *testing.T) {
	e := startServer(t, func(o *Options) { o.AllowInsecureAuth = false })
	rc := e.raw(t)
	rc.send("A1 STARTTLS\r\nA2 LOGIN alice@example.org \"" + alicePW + "\"")
	rc.expect(`^A1 OK `)
	rc.c.SetReadDeadline(time.Now().Add(2 * time.Second))
	rest, _ := io.ReadAll(rc.r)
	if strings.Contains(string(rest), "A2") {
		t.Fatalf("injected command answered: %q", rest)
	}
}

// APPEND larger than APPENDLIMIT is refused before the literal is read.
func TestAppendLimit(t *testing.T) {
	e := startServer(t, func(o *Options) { o.AppendLimit = 100 })
	rc := e.raw(t)
	rc.ok(`LOGIN alice@example.org "` + alicePW + `"`)
	if u := rc.ok("CAPABILITY"); !hasLine(u, `APPENDLIMIT=100( |$)`) {
		t.Errorf("capability: %q", u)
	}
	if _, done := rc.cmd("APPEND INBOX {500}"); !strings.HasPrefix(done, "NO [TOOBIG]") {
		t.Fatalf("oversized APPEND: %s", done)
	}
	rc.ok("NOOP")
}

// Remote clients never get the plaintext-auth engine, whatever the options.
func TestEngineChoice(t *testing.T) {
	for _, mode := range []TLSMode{TLSNone, TLSOptional, TLSRequired, TLSImplicit} {
		for _, allow := range []bool{false, true} {
			e := startServer(t, func(o *Options) { o.TLSMode = mode; o.AllowInsecureAuth = allow })
			if got := e.srv.engineFor(false); got != e.srv.strictLn {
				t.Errorf("%v allow=%v: remote client gets the insecure engine", mode, allow)
			}
			wantLoose := allow && mode != TLSRequired
			if got := e.srv.engineFor(true); (got == e.srv.looseLn && got != nil) != wantLoose {
				t.Errorf("%v allow=%v: loopback engine loose=%v, want %v", mode, allow, got == e.srv.looseLn, wantLoose)
			}
		}
	}
}
