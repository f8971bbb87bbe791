package imapd

import (
	"fmt"
	"strings"
	"testing"
)

// TestMetaFetchBytes: the FETCH responses metaFetch formats itself are byte
// for byte the ones go-imap's writer makes, for each item it handles, every
// flag shape (system flags, keywords, \Recent, none), a one-digit day in
// INTERNALDATE, and over STARTTLS as over plaintext.
func TestMetaFetchBytes(t *testing.T) {
	e := startServer(t)
	for i := range 4 {
		e.deliver(t, testMsg(fmt.Sprintf("m%d", i), strings.Repeat("body ", i+1)), alice)
	}
	for _, overTLS := range []bool{false, true} {
		rc := e.raw(t)
		if overTLS {
			rc.startTLS(e.clientTLS)
		}
		rc.ok(`LOGIN alice@example.org "` + alicePW + `"`)
		if !overTLS {
			msg := testMsg("early", "appended with a date")
			rc.send(fmt.Sprintf(`A1 APPEND INBOX (\Seen) " 3-Feb-2026 09:05:00 +0100" {%d+}`, len(msg)))
			rc.send(msg)
			rc.expect(`^A1 OK \[APPENDUID `)
		}
		rc.ok("SELECT INBOX")
		if !overTLS {
			rc.ok(`STORE 1 +FLAGS.SILENT (\Seen \Flagged $Label1)`)
			rc.ok(`STORE 3 +FLAGS.SILENT ($Work NonJunk)`)
			rc.ok(`STORE 4 +FLAGS.SILENT (\Answered \Draft \Deleted)`)
		}
		for _, cmd := range []string{
			"UID FETCH 1:* (FLAGS)",
			"FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE)",
			"FETCH 2,4 (RFC822.SIZE)",
			"FETCH 1:* FAST",
			"UID FETCH 3:* (UID)",
			"FETCH 5 (INTERNALDATE FLAGS)",
		} {
			e.srv.goimapFetch.Store(false)
			ours := rc.rawReply(cmd)
			e.srv.goimapFetch.Store(true)
			theirs := rc.rawReply(cmd)
			if ours != theirs {
				t.Errorf("tls=%v %s:\nmetaFetch wrote\n%s\ngo-imap wrote\n%s", overTLS, cmd, ours, theirs)
			}
			if n := strings.Count(ours, "* "); n == 0 {
				t.Errorf("tls=%v %s: no FETCH response in %q", overTLS, cmd, ours)
			}
		}
		e.srv.goimapFetch.Store(false)
		got := rc.rawReply("FETCH 1:* (INTERNALDATE FLAGS)")
		// Items in fetchOne's order, not the command's; INTERNALDATE in UTC,
		// as the store keeps it; \Recent in both sessions (README).
		for _, want := range []string{
			"* 1 FETCH (FLAGS (\\Flagged \\Seen $Label1 \\Recent) INTERNALDATE \"",
			"* 5 FETCH (FLAGS (\\Seen \\Recent) INTERNALDATE \" 3-Feb-2026 08:05:00 +0000\")\r\n",
		} {
			if !strings.Contains(got, want) {
				t.Errorf("tls=%v: %q not in\n%s", overTLS, want, got)
			}
		}
	}
}

// rawReply sends a tagged command and returns every byte up to the end of
// the tagged status line, tag replaced by "T", so replies to two commands
// compare equal.
func (rc *rawConn) rawReply(line string) string {
	rc.t.Helper()
	rc.tag++
	tag := fmt.Sprintf("T%d", rc.tag)
	rc.send(tag + " " + line)
	var sb strings.Builder
	for {
		l := rc.readLine() + "\r\n"
		if strings.HasPrefix(l, tag+" ") {
			sb.WriteString("T" + strings.TrimPrefix(l, tag))
			return sb.String()
		}
		sb.WriteString(l)
	}
}
