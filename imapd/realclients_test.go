package imapd

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailsuite/mailsuite/internal/testkit"

	"github.com/emersion/go-imap/v2"
)

func needTool(t *testing.T, name string) string { return testkit.NeedTool(t, name) }

// Python's imaplib over STARTTLS and IMAPS: LIST, SELECT, SEARCH, FETCH,
// STORE, APPEND, UID MOVE, and a raw IDLE that must see a delivery.
func TestPythonImaplib(t *testing.T) {
	py := needTool(t, "python3")
	for _, mode := range []string{"starttls", "imaps"} {
		t.Run(mode, func(t *testing.T) {
			e := startServer(t, func(o *Options) {
				o.AllowInsecureAuth = false
				if mode == "imaps" {
					o.TLSMode = TLSImplicit
				}
			})
			host, port, _ := strings.Cut(e.addr, ":")
			cmd := exec.Command(py, "testdata/imaplib_client.py", host, port, e.certFile, alice, alicePW, mode)
			cmd.Stderr = testWriter{t}
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			timer := time.AfterFunc(30*time.Second, func() { cmd.Process.Kill() })
			defer timer.Stop()
			var lines []string
			go func() {
				defer close(done)
				sc := bufio.NewScanner(out)
				for sc.Scan() {
					lines = append(lines, sc.Text())
					if sc.Text() == "IDLING" {
						e.deliver(t, testMsg("pushed", "x"), alice)
					}
				}
			}()
			<-done
			if err := cmd.Wait(); err != nil {
				t.Fatalf("imaplib client failed: %v (output %q)", err, lines)
			}
			if len(lines) < 3 || lines[1] != "EXISTS 1" || lines[2] != "DONE" {
				t.Fatalf("output %q", lines)
			}
		})
	}
}

// curl's IMAP client: imap:// (plaintext on loopback with AllowInsecureAuth,
// and STARTTLS with --ssl-reqd) and imaps:// with -k: LIST and FETCH.
func TestCurl(t *testing.T) {
	curl := needTool(t, "curl")
	msg := testMsg("for curl", "curl body line")
	cases := []struct {
		name   string
		mode   TLSMode
		scheme string
		args   []string
	}{
		{"imap-plain-loopback", TLSOptional, "imap", nil},
		{"imap-starttls", TLSRequired, "imap", []string{"--ssl-reqd", "-k"}},
		{"imaps", TLSImplicit, "imaps", []string{"-k"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := startServer(t, func(o *Options) { o.TLSMode = tc.mode })
			e.deliver(t, msg, alice)
			run := func(path string) string {
				t.Helper()
				args := append([]string{"-sS", "--max-time", "20", "-u", alice + ":" + alicePW}, tc.args...)
				args = append(args, tc.scheme+"://"+e.addr+path)
				out, err := exec.Command(curl, args...).CombinedOutput()
				if err != nil {
					t.Fatalf("curl %s: %v\n%s", path, err, out)
				}
				return string(out)
			}
			list := run("/")
			for _, want := range []string{`"/" INBOX`, `"/" "Sent"`, `"/" "Trash"`} {
				if !strings.Contains(list, want) {
					t.Errorf("LIST lacks %s:\n%s", want, list)
				}
			}
			if got := run("/INBOX;UID=1"); got != msg {
				t.Errorf("FETCH = %q, want %q", got, msg)
			}
			if got := run("/INBOX?SUBJECT%20curl"); !strings.Contains(got, "SEARCH 1") {
				t.Errorf("SEARCH = %q", got)
			}
		})
	}
}

// mbsync (isync): a full two-way sync of every folder into a local
// maildir, a second run that changes nothing, then local changes (a new
// message, a flag) pushed back to the server.
func TestMbsync(t *testing.T) {
	mbsync := needTool(t, "mbsync")
	e := startServer(t, func(o *Options) { o.TLSMode = TLSImplicit; o.AllowInsecureAuth = false })
	e.deliver(t, testMsg("inbox-one", "1"), alice)
	e.deliver(t, testMsg("inbox-two", "2"), alice)
	c := e.client(t, alice, alicePW, nil)
	if err := c.Create("Projects/Alpha", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	appendMsg(t, c, "Projects/Alpha", testMsg("alpha", "a"), &imap.AppendOptions{Flags: []imap.Flag{imap.FlagSeen}})
	appendMsg(t, c, "Sent", testMsg("sent-one", "s"), &imap.AppendOptions{Flags: []imap.Flag{imap.FlagSeen, imap.FlagAnswered}})

	work := t.TempDir()
	host, port, _ := strings.Cut(e.addr, ":")
	// isync renamed SSLType to TLSType in 1.5.
	tlsKey := "TLSType"
	if v, _ := exec.Command(mbsync, "--version").Output(); strings.HasPrefix(string(v), "isync 1.4") || strings.HasPrefix(string(v), "isync 1.3") {
		tlsKey = "SSLType"
	}
	rc := strings.Join([]string{
		"IMAPAccount test", "Host " + host, "Port " + port, "User " + alice, "Pass " + alicePW,
		tlsKey + " IMAPS", "CertificateFile " + e.certFile, "",
		"IMAPStore remote", "Account test", "",
		"MaildirStore local", "Path " + work + "/mail/", "Inbox " + work + "/mail/INBOX", "SubFolders Verbatim", "",
		"Channel sync", "Far :remote:", "Near :local:", "Patterns *", "Create Both", "Expunge Both", "SyncState *", "",
	}, "\n")
	if err := os.MkdirAll(filepath.Join(work, "mail"), 0o700); err != nil {
		t.Fatal(err)
	}
	rcFile := filepath.Join(work, "mbsyncrc")
	if err := os.WriteFile(rcFile, []byte(rc), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(what string) {
		t.Helper()
		cmd := exec.Command(mbsync, "-c", rcFile, "-a")
		start := time.Now()
		out, err := cmd.CombinedOutput()
		t.Logf("mbsync %s: %v", what, time.Since(start)) // mbsync itself sleeps 1 s after touching a maildir in the same second
		if err != nil {
			t.Fatalf("mbsync %s: %v\n%s", what, err, out)
		}
	}
	local := func(folder string) []string {
		t.Helper()
		var names []string
		for _, sub := range []string{"cur", "new"} {
			ents, _ := os.ReadDir(filepath.Join(work, "mail", folder, sub))
			for _, de := range ents {
				names = append(names, sub+"/"+de.Name())
			}
		}
		return names
	}
	serverState := func() string {
		t.Helper()
		var b strings.Builder
		list, err := c.List("", "*", nil).Collect()
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range list {
			sel, err := c.Select(d.Mailbox, nil).Wait()
			if err != nil {
				t.Fatal(err)
			}
			msgs, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, Flags: true, Envelope: true}).Collect()
			if err != nil && c.Mailbox().NumMessages > 0 {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "%s uidvalidity=%d\n", d.Mailbox, sel.UIDValidity)
			for _, m := range msgs {
				fmt.Fprintf(&b, "  %d %s %v\n", m.UID, m.Envelope.Subject, m.Flags)
			}
		}
		if err := c.Unselect().Wait(); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}

	run("first")
	if n := len(local("INBOX")); n != 2 {
		t.Fatalf("local INBOX has %d messages", n)
	}
	if n := len(local("Projects/Alpha")); n != 1 {
		t.Fatalf("local Projects/Alpha has %d messages (%v)", n, local("Projects/Alpha"))
	}
	if n := len(local("Sent")); n != 1 || !strings.HasSuffix(local("Sent")[0], ",RS") {
		t.Fatalf("local Sent: %v", local("Sent"))
	}
	before, localBefore := serverState(), local("INBOX")

	run("second")
	if after := serverState(); after != before {
		t.Fatalf("second run changed the server:\n%s\nvs\n%s", before, after)
	}
	if l := local("INBOX"); strings.Join(l, " ") != strings.Join(localBefore, " ") {
		t.Fatalf("second run changed the local INBOX: %v vs %v", localBefore, l)
	}

	// Local changes: flag the first message, drop in a new one.
	first := filepath.Join(work, "mail", "INBOX", localBefore[0])
	flagged := first + "F"
	if !strings.Contains(filepath.Base(first), ":2,") {
		flagged = first + ":2,F"
	}
	if err := os.Rename(first, flagged); err != nil {
		t.Fatal(err)
	}
	newMsg := testMsg("written-locally", "from the maildir")
	if err := os.WriteFile(filepath.Join(work, "mail", "INBOX", "new", "1700000000.local1.host"), []byte(newMsg), 0o600); err != nil {
		t.Fatal(err)
	}
	run("third")
	state := serverState()
	if !strings.Contains(state, "written-locally") {
		t.Errorf("new local message not on the server:\n%s", state)
	}
	if !strings.Contains(state, "\\Flagged") {
		t.Errorf("local flag not on the server:\n%s", state)
	}
}
