package smtpd

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/emersion/go-message/mail"
)

// ErrRejected is what a hook returns (or wraps) to refuse a sender,
// recipient or message with 550 5.7.1. To choose the exact reply, return a
// *smtp.SMTPError instead. Any other error is treated as a failure of the
// embedder: 451 4.3.0 with an ID, the error logged and passed to OnError.
var ErrRejected = errors.New("smtpd: rejected")

// Hooks are optional callbacks for embedders. Each may be nil, at no cost.
// They run on the connection's goroutine: a slow hook delays that client.
type Hooks struct {
	// OnStart and OnStop bracket Serve for a listener's address.
	OnStart func(addr net.Addr)
	OnStop  func(addr net.Addr)
	// OnConnect is asked before the greeting; false closes the connection.
	// It runs on the accept loop (internal/netlimit), so it must be quick.
	OnConnect func(remote net.Addr) bool
	// OnAuth reports every AUTH attempt that reached a verdict. user is the
	// name the client gave (empty if it sent none).
	OnAuth func(remote net.Addr, user, mech string, ok bool)
	// OnMailFrom may refuse a sender (see ErrRejected). from is "" for <>.
	OnMailFrom func(s *SessionInfo, from string) error
	// OnRcptTo may refuse a recipient. It runs before the account checks.
	OnRcptTo func(s *SessionInfo, from, to string) error
	// OnMessage gets every accepted message before it is stored or
	// relayed; an error refuses it. It is the only destination when no
	// Directory is configured.
	OnMessage func(m *Message) error
	// OnCommand and OnReply form the transcript (see the package doc for
	// which commands are seen). AUTH payloads are never included.
	OnCommand func(sessionID, line string)
	OnReply   func(sessionID, line string)
	// OnClose is called once when a connection ends.
	OnClose func(sessionID string)
	// OnError reports errors that were answered with a temporary failure.
	OnError func(sessionID string, err error)
}

// SessionInfo describes the client of a connection.
type SessionInfo struct {
	ID     string   // connection ID, as in logs and the transcript hooks
	Remote net.Addr // client address
	Helo   string   // EHLO/HELO argument
	User   string   // authenticated user; "" if none
	TLS    bool     // connection is encrypted
}

// Message is an accepted message with its envelope.
type Message struct {
	Session SessionInfo
	ID      string   // message ID (Received header, 250 reply, logs)
	From    string   // envelope sender; "" for <>
	To      []string // envelope recipients as the client gave them
	// Raw is the message as received (CRLF line ends, without the trace
	// headers smtpd adds). It is only valid during OnMessage: copy to keep.
	Raw []byte
}

// Header parses the message's top-level header.
func (m *Message) Header() (mail.Header, error) {
	r, err := m.Reader()
	if err != nil {
		return mail.Header{}, err
	}
	return r.Header, nil
}

// Reader returns a go-message reader over Raw for walking the MIME parts.
func (m *Message) Reader() (*mail.Reader, error) {
	r, err := mail.CreateReader(bytes.NewReader(m.Raw))
	if r == nil {
		return nil, fmt.Errorf("smtpd: parse message %s: %w", m.ID, err)
	}
	// An unknown charset still leaves a usable reader.
	return r, nil
}

// Attachment is one attached file of a message.
type Attachment struct {
	Filename    string
	ContentType string
	Data        []byte // decoded (transfer encoding removed)
}

// Parts returns the message's inline text and HTML bodies (the first of
// each) and its attachments, decoded.
func (m *Message) Parts() (text, html string, atts []Attachment, err error) {
	r, err := m.Reader()
	if err != nil {
		return "", "", nil, err
	}
	for {
		p, err := r.NextPart()
		if err == io.EOF {
			return text, html, atts, nil
		}
		if p == nil {
			return text, html, atts, fmt.Errorf("smtpd: message %s: %w", m.ID, err)
		}
		data, err := io.ReadAll(p.Body)
		if err != nil {
			return text, html, atts, fmt.Errorf("smtpd: message %s: read part: %w", m.ID, err)
		}
		switch h := p.Header.(type) {
		case *mail.InlineHeader:
			ct, _, _ := h.ContentType()
			switch {
			case strings.EqualFold(ct, "text/html") && html == "":
				html = string(data)
			case (ct == "" || strings.EqualFold(ct, "text/plain")) && text == "":
				text = string(data)
			}
		case *mail.AttachmentHeader:
			name, _ := h.Filename()
			ct, _, _ := h.ContentType()
			atts = append(atts, Attachment{Filename: name, ContentType: ct, Data: data})
		}
	}
}
