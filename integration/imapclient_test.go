package integration

import (
	"crypto/tls"
	"fmt"
	"sort"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// dialIMAPSUnauthenticated connects to the implicit-TLS IMAP port
// (certificate verified) without logging in.
func dialIMAPSUnauthenticated(addr string, tc *tls.Config) (*imapclient.Client, error) {
	return imapclient.DialTLS(addr, &imapclient.Options{TLSConfig: tc})
}

// dialIMAPS connects to the implicit-TLS IMAP port (certificate verified)
// and logs in. handler may be nil.
func dialIMAPS(addr string, tc *tls.Config, user, pass string, handler *imapclient.UnilateralDataHandler) (*imapclient.Client, error) {
	c, err := imapclient.DialTLS(addr, &imapclient.Options{TLSConfig: tc, UnilateralDataHandler: handler})
	if err != nil {
		return nil, err
	}
	if err := c.Login(user, pass).Wait(); err != nil {
		c.Close()
		return nil, fmt.Errorf("LOGIN %s: %w", user, err)
	}
	return c, nil
}

// dialIMAPStartTLS connects to the plain IMAP port, upgrades with STARTTLS
// (RFC 3501 §6.2.1, certificate verified) and logs in, as most desktop
// clients do.
func dialIMAPStartTLS(addr string, tc *tls.Config, user, pass string, handler *imapclient.UnilateralDataHandler) (*imapclient.Client, error) {
	c, err := imapclient.DialStartTLS(addr, &imapclient.Options{TLSConfig: tc, UnilateralDataHandler: handler})
	if err != nil {
		return nil, err
	}
	if err := c.Login(user, pass).Wait(); err != nil {
		c.Close()
		return nil, fmt.Errorf("LOGIN %s: %w", user, err)
	}
	return c, nil
}

// imapMessage is what tests need of a fetched message.
type imapMessage struct {
	UID   imap.UID
	Flags []imap.Flag
	Body  []byte // nil unless asked for
}

// fetchAll selects mailbox and returns its UIDVALIDITY and every message
// in UID order, with bodies when withBody is set (BODY.PEEK[], so \Seen is
// left alone).
func fetchAll(c *imapclient.Client, mailbox string, withBody bool) (uint32, []imapMessage, error) {
	sel, err := c.Select(mailbox, nil).Wait()
	if err != nil {
		return 0, nil, fmt.Errorf("SELECT %s: %w", mailbox, err)
	}
	if sel.NumMessages == 0 {
		return sel.UIDValidity, nil, nil
	}
	opts := &imap.FetchOptions{UID: true, Flags: true}
	if withBody {
		opts.BodySection = []*imap.FetchItemBodySection{{Peek: true}}
	}
	bufs, err := c.Fetch(allSeq(), opts).Collect()
	if err != nil {
		return 0, nil, fmt.Errorf("FETCH %s: %w", mailbox, err)
	}
	out := make([]imapMessage, 0, len(bufs))
	for _, b := range bufs {
		m := imapMessage{UID: b.UID, Flags: b.Flags}
		if withBody {
			for _, s := range b.BodySection {
				m.Body = s.Bytes
			}
			if m.Body == nil {
				return 0, nil, fmt.Errorf("FETCH %s: no body for UID %d", mailbox, b.UID)
			}
		}
		out = append(out, m)
	}
	// RFC 3501 §2.3.1.1: UIDs strictly ascend with sequence numbers.
	sort.Slice(bufs, func(i, j int) bool { return bufs[i].SeqNum < bufs[j].SeqNum })
	for i := 1; i < len(bufs); i++ {
		if bufs[i].UID <= bufs[i-1].UID {
			return 0, nil, fmt.Errorf("%s: UID %d at seq %d after UID %d at seq %d", mailbox, bufs[i].UID, bufs[i].SeqNum, bufs[i-1].UID, bufs[i-1].SeqNum)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UID < out[j].UID })
	return sel.UIDValidity, out, nil
}

// idleWatcher counts EXISTS/EXPUNGE notifications for an IDLE-ing session.
type idleWatcher struct {
	exists  chan uint32
	expunge chan uint32
	flags   chan []imap.Flag // from unsolicited FETCH (FLAGS ...)
}

func newIdleWatcher() (*idleWatcher, *imapclient.UnilateralDataHandler) {
	w := &idleWatcher{exists: make(chan uint32, 1000), expunge: make(chan uint32, 1000), flags: make(chan []imap.Flag, 1000)}
	return w, &imapclient.UnilateralDataHandler{
		Fetch: func(msg *imapclient.FetchMessageData) {
			buf, err := msg.Collect()
			if err == nil {
				select {
				case w.flags <- buf.Flags:
				default:
				}
			}
		},
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				select {
				case w.exists <- *d.NumMessages:
				default:
				}
			}
		},
		Expunge: func(seq uint32) {
			select {
			case w.expunge <- seq:
			default:
			}
		},
	}
}

// waitFlag waits for an unsolicited FETCH whose flags include f.
func (w *idleWatcher) waitFlag(f imap.Flag, limit time.Duration) error {
	timer := time.NewTimer(limit)
	defer timer.Stop()
	for {
		select {
		case flags := <-w.flags:
			if hasFlag(flags, f) {
				return nil
			}
		case <-timer.C:
			return fmt.Errorf("no FETCH with %s within %v", f, limit)
		}
	}
}

// drain forgets notifications seen so far.
func (w *idleWatcher) drain() {
	for _, ch := range []chan uint32{w.exists, w.expunge} {
		for len(ch) > 0 {
			<-ch
		}
	}
	for len(w.flags) > 0 {
		<-w.flags
	}
}

// waitExists waits for an EXISTS of at least n.
func (w *idleWatcher) waitExists(n uint32, limit time.Duration) error {
	timer := time.NewTimer(limit)
	defer timer.Stop()
	for {
		select {
		case got := <-w.exists:
			if got >= n {
				return nil
			}
		case <-timer.C:
			return fmt.Errorf("no EXISTS %d within %v", n, limit)
		}
	}
}

func hasFlag(flags []imap.Flag, f imap.Flag) bool {
	for _, x := range flags {
		if x == f {
			return true
		}
	}
	return false
}

// allSeq is the sequence set 1:*.
func allSeq() imap.SeqSet {
	var s imap.SeqSet
	s.AddRange(1, 0)
	return s
}

// idleSession is an IMAP session sitting in IDLE on INBOX.
type idleSession struct {
	c     *imapclient.Client
	idle  *imapclient.IdleCommand
	watch *idleWatcher
}

func startIdle(addr string, tc *tls.Config, user, pass string) (*idleSession, error) {
	w, handler := newIdleWatcher()
	c, err := dialIMAPS(addr, tc, user, pass, handler)
	if err != nil {
		return nil, err
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		c.Close()
		return nil, err
	}
	idle, err := c.Idle()
	if err != nil {
		c.Close()
		return nil, err
	}
	return &idleSession{c: c, idle: idle, watch: w}, nil
}

// stop ends IDLE; the session must have been told of new mail.
func (s *idleSession) stop() error {
	defer s.c.Close()
	if err := s.watch.waitExists(1, 3*time.Second); err != nil {
		return err
	}
	if err := s.idle.Close(); err != nil {
		return err
	}
	return s.idle.Wait()
}
