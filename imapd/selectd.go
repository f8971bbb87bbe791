package imapd

import (
	"errors"
	"fmt"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/mailsuite/mailsuite/mailstore"
)

// Select implements SELECT and EXAMINE (RFC 3501 §6.3.1-2, RFC 9051 §6.3.2).
func (sess *session) Select(mailbox string, options *imap.SelectOptions) (*imap.SelectData, error) {
	verb := "SELECT "
	if options.ReadOnly {
		verb = "EXAMINE "
	}
	var data *imap.SelectData
	err := sess.do("select", verb+mailbox, func() error {
		sess.sel = nil
		if err := checkName(mailbox); err != nil {
			return err
		}
		f, err := sess.user.Folder(mailbox)
		if err != nil {
			return fmt.Errorf("opening %q: %w", mailbox, err)
		}
		sess.drainEvents() // what happened before the snapshot is in it
		msgs, err := f.Sync()
		if err != nil {
			return fmt.Errorf("syncing %q: %w", mailbox, err)
		}
		st, err := f.Status()
		if err != nil {
			return fmt.Errorf("status of %q: %w", mailbox, err)
		}
		v := &view{folder: f, name: f.Name(), readOnly: options.ReadOnly, msgs: msgs}
		data = &imap.SelectData{
			Flags:          mailboxFlags(f),
			PermanentFlags: append(mailboxFlags(f), imap.FlagWildcard),
			NumMessages:    uint32(len(msgs)),
			NumRecent:      v.recent(),
			UIDNext:        imap.UID(st.UIDNext),
			UIDValidity:    f.UIDValidity(),
		}
		if options.ReadOnly {
			data.PermanentFlags = nil
		}
		for i := range msgs {
			if !hasFlag(msgs[i].Flags, mailstore.FlagSeen) {
				data.FirstUnseenSeqNum = uint32(i + 1)
				break
			}
		}
		sess.sel = v
		return nil
	})
	return data, err
}

// mailboxFlags is the FLAGS response: system flags plus the folder's
// keywords (RFC 3501 §7.2.6).
func mailboxFlags(f *mailstore.Folder) []imap.Flag {
	flags := []imap.Flag{imap.FlagSeen, imap.FlagAnswered, imap.FlagFlagged, imap.FlagDeleted, imap.FlagDraft}
	for _, k := range f.Keywords() {
		flags = append(flags, imap.Flag(k))
	}
	return flags
}

// Unselect implements UNSELECT (RFC 3691) and the second half of CLOSE.
func (sess *session) Unselect() error {
	return sess.do("unselect", "UNSELECT", func() error {
		sess.sel = nil
		return nil
	})
}

// drainEvents takes what the store reported so far and marks the view dirty
// if any of it concerns the selected folder.
func (sess *session) drainEvents() {
	for {
		select {
		case ev, ok := <-sess.events:
			if !ok {
				sess.events = nil
				return
			}
			sess.noteEvent(ev)
		default:
			return
		}
	}
}

func (sess *session) noteEvent(ev mailstore.Event) {
	if sess.sel != nil && ev.Folder == sess.sel.name {
		sess.sel.dirty = true
	}
}

// Poll implements the end-of-command and NOOP update (RFC 3501 §6.1.2,
// §7): go-imap calls it after every command.
func (sess *session) Poll(w *imapserver.UpdateWriter, allowExpunge bool) error {
	sess.waitIdle() // NOOP after an IDLE ended without DONE
	sess.drainEvents()
	return sess.flushUpdates(w, allowExpunge)
}

// Idle implements IDLE (RFC 2177): changes are written as they happen.
func (sess *session) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	done, prev, run := sess.startIdle(stop)
	if done == nil {
		return nil // the connection ended before this goroutine ran
	}
	defer close(done)
	if prev != nil {
		// An earlier IDLE ended without DONE and is still returning (its
		// stop channel is closed, so not for long).
		<-prev
	}
	hooks := &sess.srv.opts.Hooks
	if hooks.OnCommand != nil {
		hooks.OnCommand(sess.id, "IDLE")
	}
	var err error
	if run {
		err = sess.idle(w, stop)
	}
	if hooks.OnReply != nil {
		hooks.OnReply(sess.id, replyLine(err))
	}
	return err
}

// startIdle registers a running Idle (see session.idleDone): done is to be
// closed when it returns, prev is the previous Idle's. done is nil if the
// session is closed. run is false if IDLE ended before this goroutine ran:
// the next command may be running already, so Idle must not touch the
// session (nor is it registered).
func (sess *session) startIdle(stop <-chan struct{}) (done, prev chan struct{}, run bool) {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if sess.closed {
		return nil, nil, false
	}
	select {
	case <-stop:
		return make(chan struct{}), nil, false
	default:
	}
	prev = sess.idleDone
	sess.idleDone = make(chan struct{})
	return sess.idleDone, prev, true
}

func (sess *session) idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	sess.drainEvents()
	if err := sess.flushUpdates(w, true); err != nil {
		return err
	}
	for {
		select {
		case <-stop:
			return nil
		case ev, ok := <-sess.events:
			if !ok {
				sess.events = nil
				continue
			}
			sess.noteEvent(ev)
			sess.drainEvents()
			if err := sess.flushUpdates(w, true); err != nil {
				return err
			}
		}
	}
}

// flushUpdates reconciles a dirty view with the folder and tells the client.
func (sess *session) flushUpdates(w *imapserver.UpdateWriter, allowExpunge bool) error {
	v := sess.sel
	if v == nil || !v.dirty {
		return nil
	}
	cur, err := v.folder.Sync()
	if errors.Is(err, mailstore.ErrNoSuchFolder) {
		// Deleted (or renamed) by another session: as Dovecot does, end
		// the session rather than invent EXPUNGEs (RFC 3501 §7.1.5).
		sess.conn.Bye("Selected mailbox was deleted, have to disconnect")
		return fmt.Errorf("selected folder %q vanished: %w", v.name, err)
	}
	if err != nil {
		return sess.reply("poll", fmt.Errorf("syncing %q: %w", v.name, err))
	}
	u := v.reconcile(cur, allowExpunge)
	for _, seq := range u.expunged {
		if err := w.WriteExpunge(seq); err != nil {
			return err
		}
	}
	for _, i := range u.changed {
		m := &v.msgs[i]
		if err := w.WriteMessageFlags(uint32(i+1), imap.UID(m.UID), imapFlags(m)); err != nil {
			return err
		}
	}
	if u.grew {
		if err := w.WriteNumMessages(uint32(len(v.msgs))); err != nil {
			return err
		}
		if err := w.WriteNumRecent(v.recent()); err != nil {
			return err
		}
	}
	return nil
}

// imapFlags is a message's flags as IMAP sends them, with \Recent.
func imapFlags(m *mailstore.MessageInfo) []imap.Flag {
	return appendIMAPFlags(make([]imap.Flag, 0, len(m.Flags)+1), m)
}

func appendIMAPFlags(flags []imap.Flag, m *mailstore.MessageInfo) []imap.Flag {
	for _, f := range m.Flags {
		flags = append(flags, imap.Flag(f))
	}
	if m.Recent {
		flags = append(flags, "\\Recent")
	}
	return flags
}

func hasFlag(flags []mailstore.Flag, f mailstore.Flag) bool {
	for _, x := range flags {
		if x == f {
			return true
		}
	}
	return false
}
