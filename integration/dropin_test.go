package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Mail dropped into a maildir by another program (a delivery agent, an
// import script: write in tmp/, rename into new/) shows up for a client in
// IDLE within seconds, gets the next UID and reads whole over IMAP and
// POP3.
func TestMailDroppedInByAnotherProgram(t *testing.T) {
	h := officeSuite(t)
	ids := h.aliceMailsBob(t, 1, "delivered by mailsuite")
	w, handler := newIdleWatcher()
	c, err := dialIMAPS(h.addr("imaps"), h.tls, "bob@example.com", users["bob@example.com"], handler)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	idle, err := c.Idle()
	if err != nil {
		t.Fatal(err)
	}

	m := newMessage("import@example.net", "bob@example.com", "imported", 4000)
	dir := h.maildir("bob@example.com")
	name := fmt.Sprintf("%d.M1P%d.importer", time.Now().Unix(), os.Getpid())
	if err := os.WriteFile(filepath.Join(dir, "tmp", name), m.Raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "tmp", name), filepath.Join(dir, "new", name)); err != nil {
		t.Fatal(err)
	}
	if err := w.waitExists(2, 5*time.Second); err != nil {
		t.Errorf("IDLE was not told of the dropped-in message: %v", err)
	}
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatal(err)
	}
	_, msgs, err := fetchAll(c, "INBOX", true)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) == 2 {
		if id, err := checkMessage(msgs[1].Body); err != nil || id != m.ID {
			t.Errorf("the highest UID holds %q (%v), want the dropped-in message", id, err)
		}
	}
	checkInbox(t, h, "bob@example.com", ids[0], m.ID)
}
