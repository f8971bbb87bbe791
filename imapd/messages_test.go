package imapd

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailsuite/mailsuite/mailstore"
)

const mimeMsg = "From: =?UTF-8?Q?J=C3=BCrgen?= <jurgen@example.net>\r\n" +
	"To: Alice <alice@example.org>, bob@example.org\r\n" +
	"Cc: undisclosed-recipients:;\r\n" +
	"Subject: =?ISO-8859-1?Q?Gr=FC=DFe?= und mehr\r\n" +
	"Date: Tue, 03 Feb 2026 10:00:00 +0100\r\n" +
	"Message-ID: <m1@example.net>\r\n" +
	"In-Reply-To: <m0@example.net>\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: multipart/mixed; boundary=\"outer\"\r\n" +
	"\r\n" +
	"preamble\r\n" +
	"--outer\r\n" +
	"Content-Type: multipart/alternative; boundary=\"inner\"\r\n" +
	"\r\n" +
	"--inner\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"Content-Transfer-Encoding: 8bit\r\n" +
	"\r\n" +
	"Grüße aus Köln\r\n" +
	"zweite Zeile\r\n" +
	"--inner\r\n" +
	"Content-Type: text/html; charset=utf-8\r\n" +
	"\r\n" +
	"<p>Hallo</p>\r\n" +
	"--inner--\r\n" +
	"--outer\r\n" +
	"Content-Type: application/pdf; name=\"a.pdf\"\r\n" +
	"Content-Disposition: attachment; filename=\"a.pdf\"\r\n" +
	"Content-Transfer-Encoding: base64\r\n" +
	"\r\n" +
	"JVBERi0xLjQK\r\n" +
	"--outer\r\n" +
	"Content-Type: message/rfc822\r\n" +
	"\r\n" +
	"From: inner@example.com\r\n" +
	"Subject: inner\r\n" +
	"\r\n" +
	"inner body\r\n" +
	"--outer--\r\n"

func appendMsg(t *testing.T, c *imapclient.Client, mailbox, msg string, opts *imap.AppendOptions) *imap.AppendData {
	t.Helper()
	cmd := c.Append(mailbox, int64(len(msg)), opts)
	if _, err := cmd.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := cmd.Wait()
	if err != nil {
		t.Fatalf("APPEND: %v", err)
	}
	return data
}

func TestAppendFetchStructure(t *testing.T) {
	e := startServer(t)
	c := e.client(t, alice, alicePW, nil)
	date := time.Date(2026, 2, 3, 10, 0, 0, 0, time.FixedZone("", 3600))
	ad := appendMsg(t, c, "INBOX", mimeMsg, &imap.AppendOptions{Flags: []imap.Flag{imap.FlagDraft, "$Custom"}, Time: date})
	if ad.UID == 0 || ad.UIDValidity == 0 {
		t.Fatalf("APPENDUID: %+v", ad)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Fetch(imap.UIDSetNum(ad.UID), &imap.FetchOptions{
		UID: true, Flags: true, InternalDate: true, RFC822Size: true, Envelope: true,
		BodyStructure: &imap.FetchItemBodyStructure{Extended: true},
		BodySection: []*imap.FetchItemBodySection{
			{Peek: true},
			{Peek: true, Part: []int{1, 1}},
			{Peek: true, Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Subject"}},
			{Peek: true, Part: []int{3}, Specifier: imap.PartSpecifierText},
			{Peek: true, Partial: &imap.SectionPartial{Offset: 6, Size: 8}},
		},
		BinarySection: []*imap.FetchItemBinarySection{{Part: []int{2}, Peek: true}},
	}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	m := msgs[0]
	if !slices.Contains(m.Flags, imap.FlagDraft) || !slices.Contains(m.Flags, "$Custom") || slices.Contains(m.Flags, imap.FlagSeen) {
		t.Errorf("flags %v", m.Flags)
	}
	if !m.InternalDate.Equal(date) {
		t.Errorf("internal date %v, want %v", m.InternalDate, date)
	}
	if m.RFC822Size != int64(len(mimeMsg)) {
		t.Errorf("RFC822.SIZE %d, want %d", m.RFC822Size, len(mimeMsg))
	}
	env := m.Envelope
	if env.Subject != "Grüße und mehr" || env.MessageID != "m1@example.net" || !slices.Equal(env.InReplyTo, []string{"m0@example.net"}) {
		t.Errorf("envelope %+v", env)
	}
	if len(env.From) != 1 || env.From[0].Name != "Jürgen" || env.From[0].Addr() != "jurgen@example.net" {
		t.Errorf("from %+v", env.From)
	}
	if len(env.To) != 2 || env.To[1].Addr() != "bob@example.org" || len(env.Cc) != 0 {
		t.Errorf("to %+v cc %+v", env.To, env.Cc)
	}
	mp, ok := m.BodyStructure.(*imap.BodyStructureMultiPart)
	if !ok || mp.Subtype != "mixed" || len(mp.Children) != 3 {
		t.Fatalf("body structure %#v", m.BodyStructure)
	}
	alt := mp.Children[0].(*imap.BodyStructureMultiPart)
	plain := alt.Children[0].(*imap.BodyStructureSinglePart)
	if plain.Type != "text" || plain.Subtype != "plain" || plain.Params["charset"] != "utf-8" || plain.Encoding != "8bit" ||
		plain.Size != uint32(len("Grüße aus Köln\r\nzweite Zeile")) || plain.Text.NumLines != 1 {
		t.Errorf("text part %+v %+v", plain, plain.Text)
	}
	pdf := mp.Children[1].(*imap.BodyStructureSinglePart)
	if pdf.Disposition() == nil || pdf.Disposition().Value != "attachment" || pdf.Filename() != "a.pdf" || pdf.Encoding != "base64" {
		t.Errorf("attachment %+v", pdf)
	}
	rfc := mp.Children[2].(*imap.BodyStructureSinglePart)
	if rfc.MessageRFC822 == nil || rfc.MessageRFC822.Envelope.Subject != "inner" {
		t.Errorf("message/rfc822 %+v", rfc)
	}
	got := map[string]string{}
	for _, bs := range m.BodySection {
		if bs.Section.Partial != nil {
			continue
		}
		sec := *bs.Section
		sec.Peek = true // responses never say PEEK
		got[sectionName(&sec)] = string(bs.Bytes)
	}
	if got["BODY.PEEK[]"] != mimeMsg {
		t.Errorf("BODY[] differs:\n%q", got["BODY.PEEK[]"])
	}
	if got["BODY.PEEK[1.1]"] != "Grüße aus Köln\r\nzweite Zeile" {
		t.Errorf("BODY[1.1] = %q", got["BODY.PEEK[1.1]"])
	}
	if got["BODY.PEEK[HEADER.FIELDS (Subject)]"] != "Subject: =?ISO-8859-1?Q?Gr=FC=DFe?= und mehr\r\n\r\n" {
		t.Errorf("HEADER.FIELDS = %q", got["BODY.PEEK[HEADER.FIELDS (Subject)]"])
	}
	if got["BODY.PEEK[3.TEXT]"] != "inner body" {
		t.Errorf("BODY[3.TEXT] = %q", got["BODY.PEEK[3.TEXT]"])
	}
	if findPartial(m) != mimeMsg[6:14] {
		t.Errorf("partial = %q", findPartial(m))
	}
	if bin := m.FindBinarySection(&imap.FetchItemBinarySection{Part: []int{2}}); string(bin) != "%PDF-1.4\n" {
		t.Errorf("BINARY[2] = %q", bin)
	}

	// BODY[] without PEEK sets \Seen and reports it.
	msgs, err = c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Specifier: imap.PartSpecifierText}}}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(msgs[0].Flags, imap.FlagSeen) {
		t.Errorf("after BODY[TEXT]: flags %v", msgs[0].Flags)
	}
}

func findPartial(m *imapclient.FetchMessageBuffer) string {
	for _, bs := range m.BodySection {
		if bs.Section.Partial != nil {
			return string(bs.Bytes)
		}
	}
	return ""
}

// A message stored with bare LF line endings is served with CRLF, and its
// RFC822.SIZE counts the CRs.
func TestBareLFServedAsCRLF(t *testing.T) {
	e := startServer(t)
	lf := "From: a@example.net\nSubject: lf\n\nline one\nline two\n"
	e.deliver(t, lf, alice)
	c := e.client(t, alice, alicePW, nil)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{RFC822Size: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	want := strings.ReplaceAll(lf, "\n", "\r\n")
	if got := string(msgs[0].BodySection[0].Bytes); got != want {
		t.Errorf("BODY[] = %q, want %q", got, want)
	}
	if msgs[0].RFC822Size != int64(len(want)) {
		t.Errorf("RFC822.SIZE = %d, want %d", msgs[0].RFC822Size, len(want))
	}
}

func TestStoreCopyMoveExpunge(t *testing.T) {
	e := startServer(t)
	for i := 0; i < 5; i++ {
		e.deliver(t, testMsg("m"+string(rune('a'+i)), "body"), alice)
	}
	c := e.client(t, alice, alicePW, nil)
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil || sel.NumMessages != 5 {
		t.Fatalf("SELECT: %+v %v", sel, err)
	}
	if !slices.Contains(sel.PermanentFlags, imap.FlagWildcard) {
		t.Errorf("PERMANENTFLAGS %v lacks \\*", sel.PermanentFlags)
	}
	// +FLAGS with a keyword, answered with FETCH.
	got, err := c.Store(imap.SeqSetNum(1, 2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagFlagged, "Work"}}, nil).Collect()
	if err != nil || len(got) != 2 || !slices.Contains(got[0].Flags, "Work") {
		t.Fatalf("STORE +FLAGS: %+v %v", got, err)
	}
	// -FLAGS.SILENT answers nothing.
	got, err = c.Store(imap.SeqSetNum(2), &imap.StoreFlags{Op: imap.StoreFlagsDel, Silent: true, Flags: []imap.Flag{"Work"}}, nil).Collect()
	if err != nil || len(got) != 0 {
		t.Fatalf("STORE -FLAGS.SILENT: %+v %v", got, err)
	}
	f, _ := c.Fetch(imap.SeqSetNum(1, 2), &imap.FetchOptions{Flags: true}).Collect()
	if !slices.Contains(f[0].Flags, "Work") || slices.Contains(f[1].Flags, "Work") || !slices.Contains(f[1].Flags, imap.FlagFlagged) {
		t.Errorf("flags after STORE: %v / %v", f[0].Flags, f[1].Flags)
	}
	// COPY with COPYUID.
	cd, err := c.Copy(imap.SeqSetNum(1, 2), "Archive").Wait()
	if err != nil {
		t.Fatal(err)
	}
	if src, _ := cd.SourceUIDs.Nums(); len(src) != 2 {
		t.Errorf("COPYUID %+v", cd)
	}
	if _, err := c.Copy(imap.SeqSetNum(1), "Nowhere").Wait(); err == nil || !strings.Contains(err.Error(), "TRYCREATE") {
		t.Errorf("COPY to missing: %v", err)
	}
	// UID MOVE: COPYUID and EXPUNGE.
	md, err := c.Move(imap.UIDSetNum(3), "Trash").Wait()
	if err != nil {
		t.Fatal(err)
	}
	if dst, _ := md.DestUIDs.(imap.UIDSet).Nums(); len(dst) != 1 {
		t.Errorf("MOVE COPYUID %+v", md)
	}
	if n := c.Mailbox().NumMessages; n != 4 {
		t.Errorf("after MOVE %d messages", n)
	}
	// EXPUNGE removes \Deleted ones; UID EXPUNGE only those named.
	if _, err := c.Store(imap.SeqSetNum(1, 2, 3), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Collect(); err != nil {
		t.Fatal(err)
	}
	uids, _ := c.Fetch(imap.SeqSetNum(3), &imap.FetchOptions{UID: true}).Collect()
	exp, err := c.UIDExpunge(imap.UIDSetNum(uids[0].UID)).Collect()
	if err != nil || !slices.Equal(exp, []uint32{3}) {
		t.Fatalf("UID EXPUNGE: %v %v", exp, err)
	}
	exp, err = c.Expunge().Collect()
	if err != nil || !slices.Equal(exp, []uint32{2, 1}) {
		t.Fatalf("EXPUNGE: %v %v", exp, err)
	}
	st, _ := c.Status("Trash", &imap.StatusOptions{NumMessages: true}).Wait()
	if *st.NumMessages != 1 {
		t.Errorf("Trash has %d", *st.NumMessages)
	}
	rest, _ := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{Envelope: true}).Collect()
	if len(rest) != 1 || rest[0].Envelope.Subject != "me" {
		t.Errorf("left: %+v", rest)
	}
}

func TestSearch(t *testing.T) {
	e := startServer(t)
	big := testMsg("big one", strings.Repeat("filler ", 500)+"needle")
	e.deliver(t, testMsg("hello world", "first body"), alice)
	e.deliver(t, big, alice)
	e.deliver(t, "From: Dora <dora@example.com>\r\nTo: alice@example.org\r\nSubject: =?UTF-8?B?w5xiZXJ3ZWlzdW5n?=\r\nX-Tag: green\r\nDate: Sun, 01 Mar 2026 09:00:00 +0000\r\n\r\nthird\r\n", alice)
	c := e.client(t, alice, alicePW, nil)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	c.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagSeen, "Blue"}}, nil).Collect()
	search := func(crit *imap.SearchCriteria) []uint32 {
		t.Helper()
		d, err := c.Search(crit, nil).Wait()
		if err != nil {
			t.Fatal(err)
		}
		return d.AllSeqNums()
	}
	cases := []struct {
		name string
		crit imap.SearchCriteria
		want []uint32
	}{
		{"all", imap.SearchCriteria{}, []uint32{1, 2, 3}},
		{"seen", imap.SearchCriteria{Flag: []imap.Flag{imap.FlagSeen}}, []uint32{1}},
		{"unseen", imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagSeen}}, []uint32{2, 3}},
		{"keyword", imap.SearchCriteria{Flag: []imap.Flag{"Blue"}}, []uint32{1}},
		{"subject", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "WORLD"}}}, []uint32{1}},
		{"encoded subject", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "überweisung"}}}, []uint32{3}},
		{"from", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "From", Value: "dora"}}}, []uint32{3}},
		{"header", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "X-Tag", Value: "gre"}}}, []uint32{3}},
		{"header present", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "X-Tag", Value: ""}}}, []uint32{3}},
		{"body", imap.SearchCriteria{Body: []string{"NEEDLE"}}, []uint32{2}},
		{"text", imap.SearchCriteria{Text: []string{"dora@"}}, []uint32{3}},
		{"larger", imap.SearchCriteria{Larger: 1000}, []uint32{2}},
		{"smaller", imap.SearchCriteria{Smaller: 1000}, []uint32{1, 3}},
		{"sentsince", imap.SearchCriteria{SentSince: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)}, []uint32{3}},
		{"sentbefore", imap.SearchCriteria{SentBefore: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)}, []uint32{1, 2}},
		{"since today", imap.SearchCriteria{Since: time.Now().UTC().Add(-24 * time.Hour)}, []uint32{1, 2, 3}},
		{"before", imap.SearchCriteria{Before: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)}, nil},
		{"not", imap.SearchCriteria{Not: []imap.SearchCriteria{{Flag: []imap.Flag{imap.FlagSeen}}}}, []uint32{2, 3}},
		{"or", imap.SearchCriteria{Or: [][2]imap.SearchCriteria{{{Body: []string{"needle"}}, {Flag: []imap.Flag{"Blue"}}}}}, []uint32{1, 2}},
		{"seqset", imap.SearchCriteria{SeqNum: []imap.SeqSet{imap.SeqSetNum(2, 3)}}, []uint32{2, 3}},
		{"uid range", imap.SearchCriteria{UID: []imap.UIDSet{{imap.UIDRange{Start: 2, Stop: 0}}}}, []uint32{2, 3}},
	}
	for _, tc := range cases {
		if got := search(&tc.crit); !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}

	// ESEARCH return options and SEARCHRES.
	rc := e.raw(t)
	rc.ok(`LOGIN alice@example.org "` + alicePW + `"`)
	rc.ok("SELECT INBOX")
	u := rc.ok("UID SEARCH RETURN (MIN MAX COUNT SAVE) UNSEEN")
	if !hasLine(u, `^\* ESEARCH \(TAG "T3"\) UID MIN 2 MAX 3 COUNT 2$`) {
		t.Errorf("ESEARCH: %q", u)
	}
	u = rc.ok("UID FETCH $ (FLAGS)")
	if len(u) != 2 || !hasLine(u, `UID 2`) || !hasLine(u, `UID 3`) {
		t.Errorf("FETCH $: %q", u)
	}
	u = rc.ok("SEARCH CHARSET UTF-8 SUBJECT hello")
	if !hasLine(u, `^\* SEARCH 1$`) {
		t.Errorf("SEARCH: %q", u)
	}
}

func TestAppendQuota(t *testing.T) {
	e := startServer(t, func(o *mailstore.Options) {
		o.Quota = func(user string) int64 { return 2000 }
		o.QuotaGrace = 0.01
	})
	c := e.client(t, alice, alicePW, nil)
	appendMsg(t, c, "INBOX", testMsg("small", "x"), nil)
	big := testMsg("big", strings.Repeat("y", 5000))
	cmd := c.Append("INBOX", int64(len(big)), nil)
	cmd.Write([]byte(big))
	cmd.Close()
	if _, err := cmd.Wait(); err == nil || !strings.Contains(err.Error(), "OVERQUOTA") {
		t.Fatalf("APPEND over quota: %v", err)
	}
}

// Large bodies stream in several batches; partial fetches clip at the end.
func TestLargeBodyAndPartial(t *testing.T) {
	e := startServer(t)
	c := e.client(t, alice, alicePW, nil)
	var sb strings.Builder
	sb.WriteString("Subject: big\r\n\r\n")
	for sb.Len() < 200000 {
		sb.WriteString("0123456789abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ\r\n")
	}
	msg := sb.String()
	appendMsg(t, c, "INBOX", msg, nil)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{
		{Peek: true},
		{Peek: true, Partial: &imap.SectionPartial{Offset: 100000, Size: 50}},
		{Peek: true, Partial: &imap.SectionPartial{Offset: int64(len(msg)) - 5, Size: 50}},
		{Peek: true, Partial: &imap.SectionPartial{Offset: 300000, Size: 10}},
	}}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	secs := msgs[0].BodySection
	if len(secs) != 4 {
		t.Fatalf("%d sections", len(secs))
	}
	if string(secs[0].Bytes) != msg {
		t.Errorf("BODY[] differs (%d vs %d octets)", len(secs[0].Bytes), len(msg))
	}
	if string(secs[1].Bytes) != msg[100000:100050] {
		t.Errorf("<100000.50> = %q", secs[1].Bytes)
	}
	if string(secs[2].Bytes) != msg[len(msg)-5:] {
		t.Errorf("tail partial = %q", secs[2].Bytes)
	}
	if len(secs[3].Bytes) != 0 {
		t.Errorf("partial beyond the end = %q", secs[3].Bytes)
	}
}
