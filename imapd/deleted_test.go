package imapd

import (
	"strings"
	"testing"
)

// TestSelectedFolderDeletedElsewhere: a folder one session has selected is
// deleted, or renamed, by another session. The first is told at its next
// command (or at once while IDLE) with a BYE, as Dovecot does, instead of
// going on showing messages that are gone.
func TestSelectedFolderDeletedElsewhere(t *testing.T) {
	for _, change := range []string{"DELETE Work", "RENAME Work Done"} {
		t.Run(change, func(t *testing.T) {
			e := startServer(t)
			a := aliceInWork(t, e)
			b := e.raw(t)
			b.ok(`LOGIN alice@example.org "` + alicePW + `"`)
			b.ok(change)

			a.send("T9 NOOP")
			line := a.readLine()
			if !strings.HasPrefix(line, "* BYE ") {
				t.Fatalf("after %s elsewhere, NOOP got %q, want * BYE", change, line)
			}
			// The other session goes on.
			b.ok("LIST \"\" *")
		})
	}
	t.Run("while IDLE", func(t *testing.T) {
		e := startServer(t)
		a := aliceInWork(t, e)
		a.send("I1 IDLE")
		a.expect(`^\+ `)
		b := e.raw(t)
		b.ok(`LOGIN alice@example.org "` + alicePW + `"`)
		b.ok("DELETE Work")
		a.expect(`^\* BYE `)
	})
}

// aliceInWork logs alice in and selects a new folder Work holding one message.
func aliceInWork(t *testing.T, e *testEnv) *rawConn {
	a := e.raw(t)
	a.ok(`LOGIN alice@example.org "` + alicePW + `"`)
	a.ok("CREATE Work")
	a.ok("APPEND Work {5+}\r\nhello")
	a.ok("SELECT Work")
	return a
}
