package imapd

import (
	"bufio"
	"bytes"
	"io"
	"mime"
	"net/mail"
	"strings"

	"github.com/emersion/go-imap/v2"
	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
)

// maxMIMEDepth bounds multipart and message/rfc822 nesting; deeper parts
// are described as opaque application/octet-stream.
const maxMIMEDepth = 32

// parseMessage reads a whole message (CRLF line endings) and returns its
// ENVELOPE and BODYSTRUCTURE (RFC 3501 §7.4.2). It never fails: malformed
// input yields the closest sensible description, as Dovecot does.
func parseMessage(r io.Reader) (*imap.Envelope, imap.BodyStructure) {
	br := bufio.NewReader(r)
	h, _ := textproto.ReadHeader(br)
	return envelopeOf(h), bodyStructure(h, br, "", 0)
}

// envelopeOf builds the envelope from raw header values. The subject and
// display names stay as sent (encoded words included) when they are ASCII,
// so clients decode them with the charset the sender chose; go-imap
// Q-encodes anything 8-bit as UTF-8.
func envelopeOf(h textproto.Header) *imap.Envelope {
	env := &imap.Envelope{
		Subject: h.Get("Subject"),
		From:    addressList(h.Get("From")),
		Sender:  addressList(h.Get("Sender")),
		ReplyTo: addressList(h.Get("Reply-To")),
		To:      addressList(h.Get("To")),
		Cc:      addressList(h.Get("Cc")),
		Bcc:     addressList(h.Get("Bcc")),
	}
	if d, err := mail.ParseDate(h.Get("Date")); err == nil {
		env.Date = d
	}
	env.InReplyTo = msgIDs(h.Get("In-Reply-To"))
	if ids := msgIDs(h.Get("Message-Id")); len(ids) > 0 {
		env.MessageID = ids[0]
	}
	return env
}

// identityCharset lets the address parser accept any charset in encoded
// words instead of failing the whole list.
func identityCharset(_ string, r io.Reader) (io.Reader, error) { return r, nil }

var addrParser = mail.AddressParser{WordDecoder: &mime.WordDecoder{CharsetReader: identityCharset}}

// addressList parses an address list leniently: RFC 5322 first, then a
// comma split that keeps whatever looks like local@domain.
func addressList(v string) []imap.Address {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil
	}
	var out []imap.Address
	if list, err := addrParser.ParseList(v); err == nil {
		for _, a := range list {
			if addr, ok := splitAddr(a.Name, a.Address); ok {
				out = append(out, addr)
			}
		}
		return out
	}
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		name, spec := "", part
		if i := strings.LastIndexByte(part, '<'); i >= 0 {
			name = strings.Trim(strings.TrimSpace(part[:i]), `"`)
			spec = strings.TrimSuffix(part[i+1:], ">")
		}
		if addr, ok := splitAddr(name, strings.TrimSpace(spec)); ok {
			out = append(out, addr)
		}
	}
	return out
}

func splitAddr(name, spec string) (imap.Address, bool) {
	i := strings.LastIndexByte(spec, '@')
	if i <= 0 || i == len(spec)-1 {
		return imap.Address{}, false
	}
	return imap.Address{Name: name, Mailbox: spec[:i], Host: spec[i+1:]}, true
}

// msgIDs extracts "<id>" tokens (without brackets, as go-imap adds them).
func msgIDs(v string) []string {
	var ids []string
	for {
		i := strings.IndexByte(v, '<')
		if i < 0 {
			break
		}
		j := strings.IndexByte(v[i:], '>')
		if j < 0 {
			break
		}
		if id := strings.TrimSpace(v[i+1 : i+j]); id != "" {
			ids = append(ids, id)
		}
		v = v[i+j+1:]
	}
	if len(ids) == 0 {
		if v = strings.TrimSpace(v); v != "" && !strings.ContainsAny(v, " \t") {
			ids = append(ids, v)
		}
	}
	return ids
}

// bodyStructure describes one MIME entity (RFC 3501 §7.4.2 BODYSTRUCTURE,
// defaults from RFC 2045 §5.2 and RFC 2046 §5.1.5 for digests).
func bodyStructure(h textproto.Header, body io.Reader, parentType string, depth int) imap.BodyStructure {
	mh := gomessage.Header{Header: h}
	mediaType, params, err := mh.ContentType()
	if err != nil || mediaType == "" || !strings.Contains(mediaType, "/") || !h.Has("Content-Type") {
		mediaType, params = "text/plain", map[string]string{"charset": "us-ascii"}
		if parentType == "multipart/digest" && !h.Has("Content-Type") {
			mediaType, params = "message/rfc822", nil
		}
	}
	typ, sub, _ := strings.Cut(mediaType, "/")
	if depth >= maxMIMEDepth {
		typ, sub = "application", "octet-stream"
	}
	disp := disposition(mh)
	lang := languages(h.Get("Content-Language"))
	loc := h.Get("Content-Location")

	if typ == "multipart" {
		mp := &imap.BodyStructureMultiPart{Subtype: sub}
		if b := params["boundary"]; b != "" {
			mr := textproto.NewMultipartReader(body, b)
			for {
				p, err := mr.NextPart()
				if err != nil {
					break
				}
				mp.Children = append(mp.Children, bodyStructure(p.Header, p, mediaType, depth+1))
			}
		}
		io.Copy(io.Discard, body)
		if len(mp.Children) == 0 {
			// go-imap (and RFC 3501's grammar) need at least one part.
			mp.Children = []imap.BodyStructure{emptyTextPart()}
		}
		mp.Extended = &imap.BodyStructureMultiPartExt{Params: params, Disposition: disp, Language: lang, Location: loc}
		return mp
	}

	sp := &imap.BodyStructureSinglePart{
		Type:        typ,
		Subtype:     sub,
		Params:      params,
		ID:          h.Get("Content-Id"),
		Description: h.Get("Content-Description"),
		Encoding:    strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding"))),
		Extended:    &imap.BodyStructureSinglePartExt{Disposition: disp, Language: lang, Location: loc},
	}
	if sp.Encoding == "" {
		sp.Encoding = "7bit"
	}
	if mediaType == "message/rfc822" || mediaType == "message/global" {
		raw, _ := io.ReadAll(body)
		sp.Size = uint32(len(raw))
		inner := bufio.NewReader(bytes.NewReader(raw))
		ih, _ := textproto.ReadHeader(inner)
		sp.MessageRFC822 = &imap.BodyStructureMessageRFC822{
			Envelope:      envelopeOf(ih),
			BodyStructure: bodyStructure(ih, inner, "", depth+1),
			NumLines:      int64(bytes.Count(raw, []byte{'\n'})),
		}
		return sp
	}
	var c lineCounter
	io.Copy(&c, body)
	sp.Size = uint32(c.n)
	if typ == "text" {
		sp.Text = &imap.BodyStructureText{NumLines: c.lines}
	}
	return sp
}

func emptyTextPart() *imap.BodyStructureSinglePart {
	return &imap.BodyStructureSinglePart{
		Type: "text", Subtype: "plain", Params: map[string]string{"charset": "us-ascii"},
		Encoding: "7bit", Text: &imap.BodyStructureText{},
		Extended: &imap.BodyStructureSinglePartExt{},
	}
}

func disposition(mh gomessage.Header) *imap.BodyStructureDisposition {
	d, params, err := mh.ContentDisposition()
	if err != nil || d == "" {
		return nil
	}
	return &imap.BodyStructureDisposition{Value: d, Params: params}
}

func languages(v string) []string {
	var out []string
	for _, l := range strings.Split(v, ",") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// lineCounter counts octets and LFs written to it.
type lineCounter struct{ n, lines int64 }

func (c *lineCounter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	c.lines += int64(bytes.Count(p, []byte{'\n'}))
	return len(p), nil
}
