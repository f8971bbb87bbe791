package imapd

import (
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/emersion/go-imap/v2"

	"github.com/mailsuite/mailsuite/mailstore"
)

func TestCRLFReader(t *testing.T) {
	cases := map[string]string{
		"a\nb\n":        "a\r\nb\r\n",
		"a\r\nb\r\n":    "a\r\nb\r\n",
		"mixed\r\nx\ny": "mixed\r\nx\r\ny",
		"\n\n":          "\r\n\r\n",
		"cr only\r":     "cr only\r",
		"":              "",
	}
	for in, want := range cases {
		// One byte at a time, so state carries across reads.
		got, err := io.ReadAll(newCRLFReader(iotest.OneByteReader(strings.NewReader(in))))
		if err != nil || string(got) != want {
			t.Errorf("%q: got %q (%v), want %q", in, got, err, want)
		}
	}
}

func msgs(uids ...mailstore.UID) []mailstore.MessageInfo {
	out := make([]mailstore.MessageInfo, len(uids))
	for i, u := range uids {
		out[i] = mailstore.MessageInfo{UID: u}
	}
	return out
}

func TestViewReconcile(t *testing.T) {
	v := &view{msgs: msgs(1, 2, 3, 4, 5)}
	cur := msgs(1, 3, 5, 6, 7)
	cur[1].Flags = []mailstore.Flag{mailstore.FlagSeen}

	// FETCH/STORE/SEARCH may not send EXPUNGE: expunged stay, view stays dirty.
	u := v.reconcile(cur, false)
	if len(u.expunged) != 0 || !u.grew || !v.dirty || len(v.msgs) != 7 {
		t.Fatalf("held: %+v dirty=%v n=%d", u, v.dirty, len(v.msgs))
	}
	if !slices.Equal(u.changed, []int{2}) {
		t.Errorf("changed %v, want [2] (UID 3 at seq 3)", u.changed)
	}
	// Then an EXPUNGE-allowing poll removes 2 and 4, highest first.
	u = v.reconcile(cur, true)
	if !slices.Equal(u.expunged, []uint32{4, 2}) || u.grew || v.dirty {
		t.Fatalf("expunge: %+v dirty=%v", u, v.dirty)
	}
	var got []mailstore.UID
	for _, m := range v.msgs {
		got = append(got, m.UID)
	}
	if !slices.Equal(got, []mailstore.UID{1, 3, 5, 6, 7}) {
		t.Errorf("view %v", got)
	}
}

func TestViewResolve(t *testing.T) {
	v := &view{msgs: msgs(3, 7, 9, 20)}
	check := func(set imap.NumSet, want []int) {
		t.Helper()
		if got := v.resolve(set, []mailstore.UID{9, 20, 99}); !slices.Equal(got, want) {
			t.Errorf("%v: got %v, want %v", set, got, want)
		}
	}
	check(imap.SeqSet{{Start: 2, Stop: 3}}, []int{1, 2})
	check(imap.SeqSet{{Start: 3, Stop: 0}}, []int{2, 3})  // 3:*
	check(imap.SeqSet{{Start: 0, Stop: 0}}, []int{3})     // *
	check(imap.SeqSet{{Start: 4, Stop: 9}}, []int{3})     // beyond the end
	check(imap.UIDSet{{Start: 5, Stop: 10}}, []int{1, 2}) // UIDs 7, 9
	check(imap.UIDSet{{Start: 21, Stop: 0}}, []int{3})    // 21:* is the last message
	check(imap.UIDSet{{Start: 100, Stop: 200}}, nil)      // none
	check(imap.SearchRes(), []int{2, 3})                  // $
	check(imap.SeqSet{{Start: 1, Stop: 2}, {Start: 2, Stop: 1}}, []int{0, 1})
}

func TestParseDefaults(t *testing.T) {
	_, bs := parseMessage(strings.NewReader("Subject: x\r\n\r\nbody\r\n"))
	sp := bs.(*imap.BodyStructureSinglePart)
	if sp.Type != "text" || sp.Subtype != "plain" || sp.Params["charset"] != "us-ascii" || sp.Encoding != "7bit" || sp.Text == nil {
		t.Errorf("default part %+v", sp)
	}
	_, bs = parseMessage(strings.NewReader("Content-Type: multipart/digest; boundary=b\r\n\r\n--b\r\n\r\nSubject: in\r\n\r\nz\r\n--b--\r\n"))
	child := bs.(*imap.BodyStructureMultiPart).Children[0].(*imap.BodyStructureSinglePart)
	if child.Type != "message" || child.MessageRFC822 == nil || child.MessageRFC822.Envelope.Subject != "in" {
		t.Errorf("digest part %+v", child)
	}
	env, _ := parseMessage(strings.NewReader("From: broken <<a@b\r\nTo: x@y.org, , \"Q, R\" <q@r.org>\r\n\r\n"))
	if len(env.To) != 2 || env.To[1].Name != "Q, R" {
		t.Errorf("to %+v", env.To)
	}
}

func TestSearchableText(t *testing.T) {
	msg := "Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		"SGVsbG8gS8O2bG4gc3Vuc2hpbmU=\r\n" + // "Hello Köln sunshine"
		"--b\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
		"Stra=DFe mit sehr langem Wo=\r\nrt\r\n" +
		"--b--\r\n"
	header, body := searchableText([]byte(msg))
	for _, want := range []string{"Hello Köln sunshine", "Straße", "Wort"} {
		if !strings.Contains(body, want) {
			t.Errorf("body lacks %q: %q", want, body)
		}
	}
	if !strings.Contains(header, "Grüße") {
		t.Errorf("header %q", header)
	}
	if !containsFold("Hello WORLD", "world") || containsFold("abc", "abcd") || !containsFold("Köln", "KÖLN") {
		t.Error("containsFold")
	}
}
