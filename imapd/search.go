package imapd

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"mime"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-message/textproto"

	"github.com/mailsuite/mailsuite/mailstore"
)

// Search implements SEARCH and UID SEARCH (RFC 3501 §6.4.4) with ESEARCH
// return options (RFC 4731) and SEARCHRES (RFC 5182). Flags, sizes, dates
// and UIDs come from the index; FROM/TO/CC/BCC/SUBJECT and SENT* from the
// cached envelope; other headers, BODY and TEXT read the message files.
func (sess *session) Search(kind imapserver.NumKind, criteria *imap.SearchCriteria, options *imap.SearchOptions) (*imap.SearchData, error) {
	var data *imap.SearchData
	line := "SEARCH"
	if kind == imapserver.NumKindUID {
		line = "UID SEARCH"
	}
	err := sess.do("search", line+" "+criteriaLine(criteria), func() error {
		v := sess.sel
		if v == nil {
			return errNoSelect
		}
		var seqs imap.SeqSet
		var uidSet imap.UIDSet
		var matched []mailstore.UID
		data = &imap.SearchData{}
		mc := &msgCtx{sess: sess, v: v}
		for i := range v.msgs {
			*mc = msgCtx{sess: sess, v: v, i: i}
			ok, err := mc.match(criteria)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			uid := v.msgs[i].UID
			matched = append(matched, uid)
			num := uint32(i + 1)
			if kind == imapserver.NumKindUID {
				num = uint32(uid)
				uidSet.AddNum(imap.UID(uid))
			} else {
				seqs.AddNum(num)
			}
			if data.Min == 0 {
				data.Min = num
			}
			data.Max = num
			data.Count++
		}
		if kind == imapserver.NumKindUID {
			data.All = uidSet
		} else {
			data.All = seqs
		}
		if options.ReturnSave {
			sess.searchRes = matched
		}
		return nil
	})
	return data, err
}

// msgCtx loads what a criterion needs about one message, once.
type msgCtx struct {
	sess *session
	v    *view
	i    int

	env    *imap.Envelope
	header *textproto.Header
	text   string // whole message, lower case
	body   string // after the header, lower case
	loaded bool
}

func (mc *msgCtx) msg() *mailstore.MessageInfo { return &mc.v.msgs[mc.i] }

func (mc *msgCtx) match(c *imap.SearchCriteria) (bool, error) {
	m := mc.msg()
	for _, set := range c.SeqNum {
		if !inSeqSet(set, uint32(mc.i+1), uint32(len(mc.v.msgs))) {
			return false, nil
		}
	}
	for _, set := range c.UID {
		if imap.IsSearchRes(set) {
			// searchRes is in UID order: it was built walking the view.
			if _, found := slices.BinarySearch(mc.sess.searchRes, m.UID); !found {
				return false, nil
			}
		} else if !inUIDSet(set, m.UID, mc.v.msgs[len(mc.v.msgs)-1].UID) {
			return false, nil
		}
	}
	for _, f := range c.Flag {
		if !mc.hasFlag(f) {
			return false, nil
		}
	}
	for _, f := range c.NotFlag {
		if mc.hasFlag(f) {
			return false, nil
		}
	}
	if c.Larger > 0 && m.VSize <= c.Larger || c.Smaller > 0 && m.VSize >= c.Smaller {
		return false, nil
	}
	if !dateIn(m.InternalDate, c.Since, c.Before) {
		return false, nil
	}
	if !c.SentSince.IsZero() || !c.SentBefore.IsZero() {
		env, err := mc.envelope()
		if err != nil {
			return false, err
		}
		if env.Date.IsZero() || !dateIn(env.Date, c.SentSince, c.SentBefore) {
			return false, nil
		}
	}
	for _, h := range c.Header {
		ok, err := mc.matchHeader(h.Key, h.Value)
		if err != nil || !ok {
			return false, err
		}
	}
	for _, s := range c.Body {
		if err := mc.load(); err != nil {
			return false, err
		}
		if !strings.Contains(mc.body, strings.ToLower(s)) {
			return false, nil
		}
	}
	for _, s := range c.Text {
		if err := mc.load(); err != nil {
			return false, err
		}
		if !strings.Contains(mc.text, strings.ToLower(s)) {
			return false, nil
		}
	}
	for i := range c.Not {
		ok, err := mc.match(&c.Not[i])
		if err != nil || ok {
			return false, err
		}
	}
	for i := range c.Or {
		a, err := mc.match(&c.Or[i][0])
		if err != nil {
			return false, err
		}
		if !a {
			b, err := mc.match(&c.Or[i][1])
			if err != nil || !b {
				return false, err
			}
		}
	}
	return true, nil
}

func (mc *msgCtx) hasFlag(f imap.Flag) bool {
	m := mc.msg()
	if strings.EqualFold(string(f), "\\Recent") {
		return m.Recent
	}
	for _, x := range m.Flags {
		if strings.EqualFold(string(x), string(f)) {
			return true
		}
	}
	return false
}

func (mc *msgCtx) envelope() (*imap.Envelope, error) {
	if mc.env == nil {
		env, _, err := mc.sess.parsed(mc.v.folder, mc.msg().UID, nil, false)
		if err != nil {
			return nil, err
		}
		mc.env = env
	}
	return mc.env, nil
}

// matchHeader is RFC 3501 §6.4.4's HEADER/FROM/TO/CC/BCC/SUBJECT: a
// case-insensitive substring of the decoded field; an empty value matches
// any message that has the field.
func (mc *msgCtx) matchHeader(key, value string) (bool, error) {
	want := strings.ToLower(value)
	if strings.EqualFold(key, "subject") {
		if b, ok := mc.v.folder.Cached(mc.msg().UID, cacheKey); ok {
			if subj, err := decodeCachedSubject(b); err == nil {
				return containsFold(decodeWords(subj), value) && (value != "" || subj != ""), nil
			}
		}
	}
	switch strings.ToLower(key) {
	case "subject", "from", "to", "cc", "bcc":
		env, err := mc.envelope()
		if err != nil {
			return false, err
		}
		var hay []string
		switch strings.ToLower(key) {
		case "subject":
			hay = []string{decodeWords(env.Subject)}
		case "from":
			hay = addrStrings(env.From)
		case "to":
			hay = addrStrings(env.To)
		case "cc":
			hay = addrStrings(env.Cc)
		case "bcc":
			hay = addrStrings(env.Bcc)
		}
		for _, h := range hay {
			if strings.Contains(strings.ToLower(h), want) {
				return true, nil
			}
		}
		return want == "" && len(hay) > 0 && hay[0] != "", nil
	}
	if err := mc.load(); err != nil {
		return false, err
	}
	for _, v := range mc.header.Values(key) {
		if strings.Contains(strings.ToLower(decodeWords(v)), want) {
			return true, nil
		}
	}
	return false, nil
}

// load reads the message file once for header and text criteria.
func (mc *msgCtx) load() error {
	if mc.loaded {
		return nil
	}
	f, err := mc.v.folder.Open(mc.msg().UID)
	if err != nil {
		return fmt.Errorf("search: opening message %d: %w", mc.msg().UID, err)
	}
	defer f.Close()
	raw, err := io.ReadAll(newCRLFReader(f))
	if err != nil {
		return fmt.Errorf("search: reading message %d: %w", mc.msg().UID, err)
	}
	h, _ := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(raw)))
	mc.header = &h
	header, body := searchableText(raw)
	mc.body = strings.ToLower(body)
	mc.text = strings.ToLower(header) + "\n" + mc.body
	mc.loaded = true
	return nil
}

var wordDecoder = mime.WordDecoder{CharsetReader: identityCharset}

// containsFold reports whether needle occurs in hay ignoring case, without
// allocating when both are ASCII (the common SEARCH case).
func containsFold(hay, needle string) bool {
	if !isASCII(hay) || !isASCII(needle) {
		return strings.Contains(strings.ToLower(hay), strings.ToLower(needle))
	}
	n := len(needle)
	for i := 0; i+n <= len(hay); i++ {
		if strings.EqualFold(hay[i:i+n], needle) {
			return true
		}
	}
	return false
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func decodeWords(s string) string {
	if !strings.Contains(s, "=?") {
		return s
	}
	if d, err := wordDecoder.DecodeHeader(s); err == nil {
		return d
	}
	return s
}

func addrStrings(l []imap.Address) []string {
	out := make([]string, len(l))
	for i, a := range l {
		out[i] = decodeWords(a.Name) + " <" + a.Mailbox + "@" + a.Host + ">"
	}
	return out
}

// dateIn compares calendar dates only, as RFC 3501 §6.4.4 asks.
func dateIn(t, since, before time.Time) bool {
	d := day(t)
	if !since.IsZero() && d.Before(day(since)) {
		return false
	}
	if !before.IsZero() && !d.Before(day(before)) {
		return false
	}
	return true
}

func day(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

func inSeqSet(set imap.SeqSet, seq, last uint32) bool {
	for _, r := range set {
		if lo, hi := span(r.Start, r.Stop, last); seq >= lo && seq <= hi {
			return true
		}
	}
	return false
}

func inUIDSet(set imap.UIDSet, uid, last mailstore.UID) bool {
	for _, r := range set {
		if lo, hi := span(uint32(r.Start), uint32(r.Stop), uint32(last)); uint32(uid) >= lo && uint32(uid) <= hi {
			return true
		}
	}
	return false
}

// criteriaLine renders criteria for the command hook (compactly; it is a
// log line, not wire syntax).
func criteriaLine(c *imap.SearchCriteria) string {
	var parts []string
	for _, s := range c.SeqNum {
		parts = append(parts, s.String())
	}
	for _, s := range c.UID {
		parts = append(parts, "UID "+s.String())
	}
	for _, f := range c.Flag {
		parts = append(parts, "KEYWORD "+string(f))
	}
	for _, f := range c.NotFlag {
		parts = append(parts, "UNKEYWORD "+string(f))
	}
	for _, h := range c.Header {
		parts = append(parts, fmt.Sprintf("HEADER %s %q", h.Key, h.Value))
	}
	for _, s := range c.Body {
		parts = append(parts, fmt.Sprintf("BODY %q", s))
	}
	for _, s := range c.Text {
		parts = append(parts, fmt.Sprintf("TEXT %q", s))
	}
	if !c.Since.IsZero() {
		parts = append(parts, "SINCE "+c.Since.Format("2-Jan-2006"))
	}
	if !c.Before.IsZero() {
		parts = append(parts, "BEFORE "+c.Before.Format("2-Jan-2006"))
	}
	if c.Larger > 0 {
		parts = append(parts, fmt.Sprint("LARGER ", c.Larger))
	}
	if c.Smaller > 0 {
		parts = append(parts, fmt.Sprint("SMALLER ", c.Smaller))
	}
	for i := range c.Not {
		parts = append(parts, "NOT ("+criteriaLine(&c.Not[i])+")")
	}
	for i := range c.Or {
		parts = append(parts, "OR ("+criteriaLine(&c.Or[i][0])+") ("+criteriaLine(&c.Or[i][1])+")")
	}
	if len(parts) == 0 {
		return "ALL"
	}
	return strings.Join(parts, " ")
}
