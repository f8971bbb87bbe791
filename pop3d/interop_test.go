package pop3d

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// TestDovecotUIDL: a maildir Dovecot wrote (dovecot-uidlist v3 with
// UIDVALIDITY 1275660208, UIDs 24 and 25) gets exactly the UIDLs Dovecot's
// default pop3_uidl_format %08Xu%08Xv gives, so POP3 clients moving over
// do not download everything again.
func TestDovecotUIDL(t *testing.T) {
	env := startServer(t)
	dir := filepath.Join(env.root, "example.org", "alice")
	for _, d := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		"cur/1275660300.M1P1.old,S=" + strconv.Itoa(len(msg1)) + ":2,S": msg1,
		"cur/1275660301.M2P1.old:2,":                                    msg2,
		"dovecot-uidlist": "3 V1275660208 N26 G3085f01b7f11094c501100008c4a11c1\n" +
			"24 :1275660300.M1P1.old,S=" + strconv.Itoa(len(msg1)) + "\n" +
			"25 :1275660301.M2P1.old\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c := env.login(alice, alicePass)
	c.run(`
C: UIDL
S: +OK
S= 1 000000184c0907b0
S= 2 000000194c0907b0
S= .
C: QUIT
S: +OK
`)
}

// TestRetrStreams: RETR of a large message does not hold it in memory.
func TestRetrStreams(t *testing.T) {
	env := startServer(t)
	line := strings.Repeat("0123456789", 7) + "\r\n"
	const size = 8 << 20
	var b strings.Builder
	b.WriteString("Subject: big\r\n\r\n")
	for b.Len() < size {
		b.WriteString(line)
	}
	big := b.String()
	env.deliver(alice, big)
	c := env.login(alice, alicePass)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c.send("RETR 1")
	c.expect("+OK " + strconv.Itoa(len(big)) + " octets")
	n := 0
	for {
		l, err := c.r.ReadSlice('\n')
		if err != nil {
			t.Fatal(err)
		}
		if string(l) == ".\r\n" {
			break
		}
		n += len(l)
	}
	runtime.ReadMemStats(&after)
	if n != len(big) {
		t.Fatalf("received %d octets, want %d", n, len(big))
	}
	// The whole process (client and server) allocated far less than the
	// message while it was sent.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > size/2 {
		t.Fatalf("RETR of %d octets allocated %d bytes", size, alloc)
	}
}
