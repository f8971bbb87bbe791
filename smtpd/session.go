package smtpd

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"

	"github.com/emersion/go-smtp"

	"github.com/mailsuite/mailsuite/internal/netlimit"
)

// session is go-smtp's Session for one EHLO..close (go-smtp starts a new
// one after STARTTLS). Its methods run on the connection's goroutine,
// except Data for BDAT, which go-smtp runs on its own goroutine while the
// connection goroutine may still call Reset: mu guards the transaction.
type session struct {
	srv  *Server
	conn *smtp.Conn
	tc   *trackedConn
	info SessionInfo // ID, Remote, Helo, TLS fixed at creation; User set by Auth

	mu        sync.Mutex
	tx        envelope
	afterData bool           // the next Reset is go-smtp's own, not a client RSET
	spare     *spareDelivery // see spare.go
	closed    bool           // Logout was called
	bdatPipe  *io.PipeReader // the BDAT transfer in flight (bdat.go)
	bdatDone  chan struct{}
}

// envelope is one transaction's state.
type envelope struct {
	from   string
	size   int64    // MAIL SIZE=, 0 if not given
	rcpts  []string // as the client gave them (accepted ones)
	local  []string // canonical users, deduplicated
	remote []string // remote addresses, deduplicated
}

func (s *Server) newSession(c *smtp.Conn) (smtp.Session, error) {
	tc := tracked(c.Conn())
	if tc == nil {
		// Unreachable: every connection comes from our listener.
		s.log.Error("smtp connection of unknown type", "type", fmt.Sprintf("%T", c.Conn()))
		return nil, errUnavailable
	}
	_, isTLS := c.TLSConnectionState()
	sess := &session{
		srv:  s,
		conn: c,
		tc:   tc,
		info: SessionInfo{ID: tc.id, Remote: c.Conn().RemoteAddr(), Helo: c.Hostname(), TLS: isTLS},
	}
	if isTLS && !tc.sawTLS && s.opts.TLSMode != TLSImplicit {
		// go-smtp starts a new session after a successful STARTTLS.
		sess.transcript("STARTTLS", "220 2.0.0 Ready to start TLS")
	}
	tc.sawTLS = isTLS
	sess.transcript("EHLO "+c.Hostname(), "250 Hello "+c.Hostname())
	return sess, nil
}

// command and replied feed the transcript hooks; transcript does both.
func (s *session) command(cmd string) {
	if h := s.srv.opts.Hooks.OnCommand; h != nil {
		h(s.info.ID, cmd)
	}
}

func (s *session) replied(line string) {
	if h := s.srv.opts.Hooks.OnReply; h != nil {
		h(s.info.ID, line)
	}
}

func (s *session) transcript(cmd, rep string) {
	s.command(cmd)
	s.replied(rep)
}

// answer turns err into the reply go-smtp will send (nil: okLine), logs
// unknown errors once, and reports the reply to the hooks. id names the
// failure for the client and the log.
func (s *session) answer(cmd string, err error, okLine, id string) error {
	if err == nil {
		s.replied(okLine)
		return nil
	}
	r, known := reply(err, id)
	if !known {
		s.srv.log.Error("smtp command failed", "session", s.info.ID, "id", id, "remote", s.info.Remote.String(),
			"user", s.user(), "command", cmd, "err", err)
		if h := s.srv.opts.Hooks.OnError; h != nil {
			h(s.info.ID, err)
		}
	}
	s.replied(replyLine(r))
	return r
}

func (s *session) user() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.info.User
}

func (s *session) snapshot() SessionInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.info
}

// Reset is called for RSET, a repeated EHLO, and by go-smtp itself after
// each message.
func (s *session) Reset() {
	s.waitBDAT()
	s.tc.busy.Store(false)
	s.mu.Lock()
	s.tx = envelope{}
	own := s.afterData
	s.afterData = false
	s.mu.Unlock()
	if !own {
		s.transcript("RSET", "250 2.0.0 Session reset")
	}
}

// Logout is called when the connection closes or STARTTLS replaces us.
func (s *session) Logout() error {
	s.dropSpare()
	if u := s.user(); u != "" {
		s.srv.untrackUser(s, u)
	}
	return nil
}

// Mail handles MAIL FROM (RFC 5321 §4.1.1.2).
func (s *session) Mail(from string, opts *smtp.MailOptions) error {
	cmd := "MAIL FROM:<" + from + ">"
	if opts != nil && opts.Size > 0 {
		cmd += fmt.Sprintf(" SIZE=%d", opts.Size)
	}
	s.command(cmd)
	err := s.mail(from, opts)
	var ok string
	if s.srv.opts.Hooks.OnReply != nil { // a nil hook costs nothing
		ok = fmt.Sprintf("250 2.0.0 Roger, accepting mail from <%v>", from)
	}
	return s.answer(cmd, err, ok, s.info.ID)
}

func (s *session) mail(from string, opts *smtp.MailOptions) error {
	o := &s.srv.opts
	info := s.snapshot()
	if o.TLSMode == TLSRequired && !info.TLS {
		return errTLSRequired // RFC 3207 §4
	}
	if !cleanPath(from) {
		return errBadSender
	}
	if o.Role == RoleSubmission {
		if info.User == "" {
			return errAuthRequired // RFC 4954 §6
		}
		if from == "" || !o.Directory.CanSendAs(info.User, from) {
			return errNotOwnSender
		}
	}
	if h := o.Hooks.OnMailFrom; h != nil {
		if err := h(&info, from); err != nil {
			return err
		}
	}
	tx := envelope{from: from}
	if opts != nil {
		tx.size = opts.Size
	}
	s.mu.Lock()
	s.tx = tx
	s.mu.Unlock()
	s.tc.busy.Store(true)
	return nil
}

// Rcpt handles RCPT TO (RFC 5321 §4.1.1.3). go-smtp has already checked
// MAIL came first and MaxRecipients.
func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	cmd := "RCPT TO:<" + to + ">"
	s.command(cmd)
	err := s.rcpt(to)
	var ok string
	if s.srv.opts.Hooks.OnReply != nil {
		ok = fmt.Sprintf("250 2.0.0 I'll make sure <%v> gets this", to)
	}
	return s.answer(cmd, err, ok, s.info.ID)
}

func (s *session) rcpt(to string) error {
	o := &s.srv.opts
	info := s.snapshot()
	s.mu.Lock()
	from, size := s.tx.from, s.tx.size
	s.mu.Unlock()
	if !cleanPath(to) {
		return errBadAddress
	}
	if h := o.Hooks.OnRcptTo; h != nil {
		if err := h(&info, from, to); err != nil {
			return err
		}
	}
	if o.Directory == nil {
		// Standalone receiver: the hook decided; OnMessage takes the mail.
		s.addRcpt(to, nil, "")
		return nil
	}
	if err := checkRecipient(to); err != nil {
		return err
	}
	users, err := o.Directory.Resolve(to)
	if err == nil {
		for _, u := range users {
			if err := o.Store.CheckQuota(u, size); err != nil {
				return fmt.Errorf("quota of %s: %w", u, err)
			}
		}
		s.addRcpt(to, users, "")
		s.prepareDelivery()
		return nil
	}
	if !isNotLocal(err) {
		return fmt.Errorf("resolve recipient: %w", err)
	}
	// A remote recipient: relaying.
	if o.Role != RoleSubmission && !s.srv.trusted(info.Remote) {
		return errRelayDenied
	}
	if o.Relay == nil {
		return errNoRelay
	}
	s.addRcpt(to, nil, to)
	return nil
}

func (s *session) addRcpt(to string, users []string, remote string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tx.rcpts = append(s.tx.rcpts, to)
	for _, u := range users {
		s.tx.local = appendNew(s.tx.local, u)
	}
	if remote != "" {
		s.tx.remote = appendNew(s.tx.remote, remote)
	}
}

// appendNew appends v unless list holds it already (case-insensitively);
// lists are short (MaxRecipients), so a scan beats a map.
func appendNew(list []string, v string) []string {
	for _, x := range list {
		if strings.EqualFold(x, v) {
			return list
		}
	}
	return append(list, v)
}

// trusted reports whether remote is in TrustedNetworks.
func (s *Server) trusted(remote net.Addr) bool {
	if len(s.opts.TrustedNetworks) == 0 {
		return false
	}
	ip, ok := netip.AddrFromSlice(netlimit.IP(remote))
	if !ok {
		return false
	}
	ip = ip.Unmap()
	for _, p := range s.opts.TrustedNetworks {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
