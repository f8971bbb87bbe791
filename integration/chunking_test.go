package integration

import (
	"fmt"
	"strings"
	"testing"
)

// CHUNKING (RFC 3030) from outside: the message comes in BDAT chunks,
// split mid-line, with lines starting with a dot that BDAT must not
// unstuff; it is stored and read back byte for byte.
func TestBDATFromOutside(t *testing.T) {
	h := officeSuite(t)
	m := newMessage("someone@example.net", "bob@example.com", "in chunks", 30_000)
	rc, err := dialRawSMTP(h.addr("smtp"))
	if err != nil {
		t.Fatal(err)
	}
	defer rc.conn.Close()
	if err := rc.write([]byte("EHLO client.example.net\r\n")); err != nil {
		t.Fatal(err)
	}
	ehlo, err := rc.readReplyLines(smtpTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(ehlo, "CHUNKING") {
		t.Fatalf("CHUNKING not offered (the design promises it):\n%s", ehlo)
	}
	for _, s := range [][2]string{{"MAIL FROM:<someone@example.net>", "250"}, {"RCPT TO:<bob@example.com>", "250"}} {
		if err := rc.step(s[0], s[1]); err != nil {
			t.Fatal(err)
		}
	}
	data := m.Raw // no dot-stuffing with BDAT
	cuts := []int{0, 7, 5000, 17_001, len(data)}
	for i := 0; i+1 < len(cuts); i++ {
		chunk := data[cuts[i]:cuts[i+1]]
		last := ""
		if i+2 == len(cuts) {
			last = " LAST"
		}
		if err := rc.write(append([]byte(fmt.Sprintf("BDAT %d%s\r\n", len(chunk), last)), chunk...)); err != nil {
			t.Fatal(err)
		}
		line, err := rc.readReply(smtpTimeout)
		if err != nil || !strings.HasPrefix(line, "250") {
			t.Fatalf("BDAT chunk %d: %q %v", i, line, err)
		}
	}
	rc.step("QUIT", "221")
	checkInbox(t, h, "bob@example.com", m.ID)
}
