package imapd

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"net"
	"sync"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/mailsuite/mailsuite/mailstore"
)

// session is one connection's imapserver.Session. go-imap calls its methods
// from the connection's goroutine one at a time, except Idle, which runs on
// a second goroutine while the first only waits for DONE.
type session struct {
	srv    *Server
	conn   *imapserver.Conn
	id     string
	remote net.Addr
	batch  *batchConn // under TLS; nil if the engine was fed another conn

	mu   sync.Mutex // guards name, busy, stopped, byeSent, closed, idleDone
	name string     // canonical user once authenticated
	// busy is set when a command starts and cleared when go-imap is back
	// at the top of its command loop (see betweenCommands), its tagged
	// reply written: a BYE before that could cut the reply off.
	busy    bool
	stopped bool // Shutdown: BYE once not busy; run no more commands
	byeSent bool
	closed  bool
	// idleDone is closed when the latest Idle returns (nil before the
	// first). go-imap's IDLE handler returns without waiting for
	// Session.Idle when the connection fails (then calls Close) and when
	// the client ends IDLE with a line other than DONE (then answers BAD
	// and reads the next command). Close, do and Poll wait for it, so Idle
	// never touches the session, or writes, beside another method.
	idleDone chan struct{}

	user        *mailstore.User
	events      <-chan mailstore.Event
	cancelWatch func()

	sel       *view           // selected folder, nil in authenticated state
	searchRes []mailstore.UID // SEARCHRES saved result (RFC 5182)
	flagBuf   []imap.Flag     // FETCH FLAGS scratch, reused per message
}

var (
	_ imapserver.SessionIMAP4rev2   = (*session)(nil)
	_ imapserver.SessionSASL        = (*session)(nil)
	_ imapserver.SessionAppendLimit = (*session)(nil)
)

func (s *Server) newSession(c *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
	nc := c.NetConn()
	sess := &session{srv: s, conn: c, id: newID(), remote: nc.RemoteAddr()}
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	sess.batch, _ = nc.(*batchConn)
	if sess.batch != nil {
		sess.batch.onReadDeadline = sess.betweenCommands // before go-imap reads
	}
	if !s.addSession(sess) {
		return nil, nil, &imap.Error{Type: imap.StatusResponseTypeBye, Text: "Server shutting down"}
	}
	return sess, nil, nil
}

func newID() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (sess *session) userName() string {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return sess.name
}

// Close implements imapserver.Session; go-imap calls it once when the
// connection ends.
func (sess *session) Close() error {
	sess.mu.Lock()
	sess.closed = true
	sess.mu.Unlock()
	sess.waitIdle()
	if sess.cancelWatch != nil {
		sess.cancelWatch()
	}
	sess.sel = nil
	sess.srv.removeSession(sess)
	if h := sess.srv.opts.Hooks.OnClose; h != nil {
		h(sess.id)
	}
	return nil
}

// waitIdle returns once no Idle runs. An Idle that has not registered by
// now sees its stop channel closed (go-imap closes it before handling the
// next command) and returns without touching the session.
func (sess *session) waitIdle() {
	sess.mu.Lock()
	done := sess.idleDone
	sess.mu.Unlock()
	if done != nil {
		<-done
	}
}

// shutdown ends the session now if it is between commands, or right after
// the command it is running has been answered.
func (sess *session) shutdown() {
	sess.mu.Lock()
	sess.stopped = true
	bye := !sess.busy && !sess.byeSent
	sess.byeSent = sess.byeSent || bye
	sess.mu.Unlock()
	if bye {
		go sess.conn.Bye("Server shutting down")
	}
}

// betweenCommands runs on the connection goroutine whenever go-imap sets a
// read deadline (batchConn.SetReadDeadline); wrote tells whether anything
// was written since the last command's session method returned. go-imap
// v2 beta.8 sets one at the top of its command loop, after flushing the
// previous tagged reply, and otherwise where no reply is pending (before
// reading IDLE's DONE or an APPEND literal), except when APPEND fails: it
// resets the deadline before writing the tagged NO. Hence "wrote": once
// the reply is out, the session is no longer busy, and Shutdown's BYE goes
// out from here, before go-imap reads another command.
func (sess *session) betweenCommands(wrote bool) {
	sess.mu.Lock()
	if sess.busy && !wrote {
		sess.mu.Unlock()
		return // the tagged reply is still to come
	}
	sess.busy = false
	bye := sess.stopped && !sess.byeSent
	sess.byeSent = sess.byeSent || bye
	sess.mu.Unlock()
	if bye {
		sess.conn.Bye("Server shutting down")
	}
}

// do runs one command: it fires OnCommand, marks the session busy (so
// Shutdown lets it finish), maps the error to the reply (the only place
// that does, see reply) and fires OnReply. Once Shutdown began, commands
// are refused: the BYE is on its way.
func (sess *session) do(op, line string, fn func() error) error {
	sess.waitIdle()
	hooks := &sess.srv.opts.Hooks
	if hooks.OnCommand != nil {
		hooks.OnCommand(sess.id, line)
	}
	sess.mu.Lock()
	stopped := sess.stopped
	sess.busy = !stopped
	sess.mu.Unlock()

	var err error
	if stopped {
		err = errShuttingDown
	} else {
		if sess.batch != nil {
			sess.batch.begin()
		}
		err = fn()
		if sess.batch != nil {
			if ferr := sess.batch.end(); ferr != nil && err == nil {
				err = ferr
			}
		}
	}
	err = sess.reply(op, err)
	if hooks.OnReply != nil {
		hooks.OnReply(sess.id, replyLine(err))
	}
	if sess.batch == nil {
		// No view of go-imap's reads (a conn not from Serve): the best
		// we can do is to end right after the command.
		go sess.betweenCommands(true)
	}
	return err
}

func replyLine(err error) string {
	if err == nil {
		return "OK"
	}
	if e, ok := err.(*imap.Error); ok {
		line := string(e.Type)
		if e.Code != "" {
			line += " [" + string(e.Code) + "]"
		}
		return line + " " + e.Text
	}
	return "NO " + err.Error()
}

// AppendLimit implements imapserver.SessionAppendLimit (RFC 7889).
func (sess *session) AppendLimit() uint32 { return sess.srv.opts.AppendLimit }

// Namespace implements imapserver.SessionNamespace (RFC 2342): one personal
// namespace, no shared or other users' folders.
func (sess *session) Namespace() (*imap.NamespaceData, error) {
	var data *imap.NamespaceData
	err := sess.do("namespace", "NAMESPACE", func() error {
		data = &imap.NamespaceData{Personal: []imap.NamespaceDescriptor{{Prefix: "", Delim: delim}}}
		return nil
	})
	return data, err
}
