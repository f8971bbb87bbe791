package imapd

import (
	"errors"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/mailsuite/mailsuite/mailstore"
)

// failFS makes message file creation fail while armed (disk full).
type failFS struct{ armed atomic.Bool }

func (f *failFS) Create(path string) (mailstore.File, error) {
	if f.armed.Load() {
		return nil, &os.PathError{Op: "open", Path: path, Err: syscall.ENOSPC}
	}
	return os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
}

// An unexpected store error becomes NO [UNAVAILABLE] with an ID; the cause
// reaches OnError (and the log) once, never the client.
func TestInternalErrorReply(t *testing.T) {
	fs := &failFS{}
	var mu sync.Mutex
	var hookErrs []error
	e := startServer(t,
		func(o *mailstore.Options) { o.FS = fs },
		func(o *Options) {
			o.Hooks.OnError = func(id string, err error) {
				mu.Lock()
				hookErrs = append(hookErrs, err)
				mu.Unlock()
			}
		})
	rc := e.raw(t)
	rc.ok(`LOGIN alice@example.org "` + alicePW + `"`)
	fs.armed.Store(true)
	_, done := rc.cmd("APPEND INBOX {5+}\r\nhello")
	if !regexpMatch(`^NO \[UNAVAILABLE\] Internal error, try again later \(ID [0-9a-f]{12}\)$`, done) {
		t.Fatalf("APPEND on a full disk: %s", done)
	}
	if strings.Contains(done, "space") || strings.Contains(done, "/") {
		t.Errorf("reply leaks the cause: %s", done)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(hookErrs) != 1 || !errors.Is(hookErrs[0], syscall.ENOSPC) {
		t.Errorf("OnError got %v", hookErrs)
	}
	fs.armed.Store(false)
	rc.ok("APPEND INBOX {5+}\r\nhello")
}

// The remaining SEARCH keys go-imap parses, as raw commands.
func TestSearchKeysTranscript(t *testing.T) {
	e := startServer(t)
	e.deliver(t, testMsg("one", "x"), alice)
	e.deliver(t, testMsg("two", "y"), alice)
	e.deliver(t, testMsg("three", "z"), alice)
	rc := e.raw(t)
	rc.ok(`LOGIN alice@example.org "` + alicePW + `"`)
	rc.ok("SELECT INBOX")
	rc.ok(`STORE 1 +FLAGS (\Answered \Seen)`)
	rc.ok(`STORE 2 +FLAGS (\Draft \Deleted)`)
	cases := []struct{ cmd, want string }{
		{"SEARCH ANSWERED", "1"},
		{"SEARCH UNANSWERED", "2 3"},
		{"SEARCH DELETED", "2"},
		{"SEARCH UNDELETED", "1 3"},
		{"SEARCH DRAFT", "2"},
		{"SEARCH UNDRAFT", "1 3"},
		{"SEARCH UNFLAGGED", "1 2 3"},
		{"SEARCH RECENT", "1 2 3"},
		{"SEARCH NEW", "2 3"},
		{"SEARCH OLD", ""},
		{"SEARCH SENTON 2-Jan-2006", "1 2 3"},
		{"SEARCH SENTON 3-Jan-2006", ""},
		{"SEARCH ON 1-Jan-1990", ""},
		{`SEARCH KEYWORD $Forwarded`, ""},
		{`SEARCH UNKEYWORD $Forwarded`, "1 2 3"},
		{"SEARCH 2:*", "2 3"},
		{"SEARCH NOT 2", "1 3"},
		{`SEARCH OR SUBJECT one SUBJECT three`, "1 3"},
		{`SEARCH (SUBJECT t) NOT SUBJECT two`, "3"},
		{`UID SEARCH UID 2:*`, "2 3"},
	}
	for _, tc := range cases {
		u := rc.ok(tc.cmd)
		want := strings.TrimSpace("* SEARCH " + tc.want)
		if len(u) != 1 || u[0] != want {
			t.Errorf("%s: %q, want %q", tc.cmd, u, want)
		}
	}
}

// LIST-EXTENDED: RECURSIVEMATCH reports parents of subscribed folders
// with CHILDINFO (RFC 5258 §3.5); RETURN (SUBSCRIBED CHILDREN).
func TestListRecursiveMatch(t *testing.T) {
	e := startServer(t)
	rc := e.raw(t)
	rc.ok(`LOGIN alice@example.org "` + alicePW + `"`)
	rc.ok("CREATE Team/Ops")
	rc.ok("SUBSCRIBE Team/Ops")
	u := rc.ok(`LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"`)
	if !hasLine(u, `^\* LIST \(.*\) "/" "Team" \(\("CHILDINFO" \("SUBSCRIBED"\)\)\)$`) && !hasLine(u, `"Team" \(CHILDINFO \("SUBSCRIBED"\)\)`) {
		t.Errorf("RECURSIVEMATCH: %q", u)
	}
	u = rc.ok(`LIST "" "Team/*" RETURN (SUBSCRIBED CHILDREN)`)
	if !hasLine(u, `^\* LIST \(\\HasNoChildren \\Subscribed\) "/" "Team/Ops"$`) {
		t.Errorf("RETURN (SUBSCRIBED CHILDREN): %q", u)
	}
	u = rc.ok(`LSUB "" "*"`)
	if !hasLine(u, `^\* LSUB \(.*\) "/" "Team/Ops"$`) {
		t.Errorf("LSUB: %q", u)
	}
}

// Deleting a folder that has children keeps the children; the parent then
// lists as \Noselect and cannot be selected (RFC 3501 §6.3.4).
func TestDeletedParentIsNoselect(t *testing.T) {
	e := startServer(t)
	rc := e.raw(t)
	rc.ok(`LOGIN alice@example.org "` + alicePW + `"`)
	rc.ok("CREATE Projects/2026")
	rc.ok("DELETE Projects")
	u := rc.ok(`LIST "" "Projects*"`)
	if !hasLine(u, `^\* LIST \(\\Noselect \\HasChildren\) "/" "Projects"$`) {
		t.Errorf("parent after DELETE: %q", u)
	}
	if !hasLine(u, `^\* LIST \(\\HasNoChildren\) "/" "Projects/2026"$`) {
		t.Errorf("child after parent's DELETE: %q", u)
	}
	if got := rc.try("SELECT Projects"); !regexpMatch(`^NO `, got) {
		t.Errorf("SELECT of a \\Noselect parent: %q", got)
	}
}
