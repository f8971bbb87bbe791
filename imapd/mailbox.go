package imapd

import (
	"fmt"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/mailsuite/mailsuite/mailstore"
)

// Create implements CREATE (RFC 3501 §6.3.3) with CREATE-SPECIAL-USE
// (RFC 6154 §3).
func (sess *session) Create(mailbox string, options *imap.CreateOptions) error {
	line := "CREATE " + mailbox
	if len(options.SpecialUse) > 0 {
		line += fmt.Sprintf(" (USE %v)", options.SpecialUse)
	}
	return sess.do("create", line, func() error {
		name, err := canonName(mailbox)
		if err != nil {
			return err
		}
		if name == mailstore.Inbox {
			return fmt.Errorf("create INBOX: %w", mailstore.ErrFolderExists)
		}
		use := mailstore.UseNone
		switch len(options.SpecialUse) {
		case 0:
		case 1:
			var ok bool
			if use, ok = specialUseFromIMAP(options.SpecialUse[0]); !ok {
				return &imap.Error{Type: imap.StatusResponseTypeNo, Code: "USEATTR", Text: "Unsupported special-use attribute"}
			}
		default:
			return &imap.Error{Type: imap.StatusResponseTypeNo, Code: "USEATTR", Text: "Only one special-use attribute per mailbox"}
		}
		if err := sess.user.CreateFolder(name, use); err != nil {
			return fmt.Errorf("create %q: %w", name, err)
		}
		return nil
	})
}

// Delete implements DELETE (RFC 3501 §6.3.4).
func (sess *session) Delete(mailbox string) error {
	return sess.do("delete", "DELETE "+mailbox, func() error {
		name, err := canonName(mailbox)
		if err != nil {
			return err
		}
		if err := sess.user.DeleteFolder(name); err != nil {
			return fmt.Errorf("delete %q: %w", name, err)
		}
		return nil
	})
}

// Rename implements RENAME (RFC 3501 §6.3.5), including the children and
// INBOX's special case, both done by the store.
func (sess *session) Rename(mailbox, newName string, _ *imap.RenameOptions) error {
	return sess.do("rename", "RENAME "+mailbox+" "+newName, func() error {
		from, err := canonName(mailbox)
		if err != nil {
			return err
		}
		to, err := canonName(newName)
		if err != nil {
			return err
		}
		if to == mailstore.Inbox {
			return fmt.Errorf("rename to INBOX: %w", mailstore.ErrFolderExists)
		}
		if err := sess.user.RenameFolder(from, to); err != nil {
			return fmt.Errorf("rename %q to %q: %w", from, to, err)
		}
		return nil
	})
}

// Subscribe implements SUBSCRIBE (RFC 3501 §6.3.6).
func (sess *session) Subscribe(mailbox string) error {
	return sess.do("subscribe", "SUBSCRIBE "+mailbox, func() error {
		return sess.setSubscribed(mailbox, true)
	})
}

// Unsubscribe implements UNSUBSCRIBE (RFC 3501 §6.3.7).
func (sess *session) Unsubscribe(mailbox string) error {
	return sess.do("unsubscribe", "UNSUBSCRIBE "+mailbox, func() error {
		return sess.setSubscribed(mailbox, false)
	})
}

func (sess *session) setSubscribed(mailbox string, on bool) error {
	name, err := canonName(mailbox)
	if err != nil {
		return err
	}
	if err := sess.user.SetSubscribed(name, on); err != nil {
		return fmt.Errorf("subscribe %q (%v): %w", name, on, err)
	}
	return nil
}

// Status implements STATUS (RFC 3501 §6.3.10, STATUS=SIZE RFC 8438,
// APPENDLIMIT RFC 7889, DELETED RFC 9051 §6.3.11).
func (sess *session) Status(mailbox string, options *imap.StatusOptions) (*imap.StatusData, error) {
	var data *imap.StatusData
	err := sess.do("status", "STATUS "+mailbox, func() error {
		name, err := canonName(mailbox)
		if err != nil {
			return err
		}
		data, err = sess.status(name, options)
		return err
	})
	return data, err
}

func (sess *session) status(name string, options *imap.StatusOptions) (*imap.StatusData, error) {
	f, err := sess.user.Folder(name)
	if err != nil {
		return nil, fmt.Errorf("status %q: %w", name, err)
	}
	st, err := f.Status()
	if err != nil {
		return nil, fmt.Errorf("status %q: %w", name, err)
	}
	data := &imap.StatusData{Mailbox: name, UIDNext: imap.UID(st.UIDNext), UIDValidity: st.UIDValidity}
	if options.NumMessages {
		data.NumMessages = &st.Messages
	}
	if options.NumUnseen {
		data.NumUnseen = &st.Unseen
	}
	if options.NumRecent {
		data.NumRecent = &st.Recent
	}
	if options.Size {
		data.Size = &st.Size
	}
	if options.AppendLimit {
		limit := sess.srv.opts.AppendLimit
		data.AppendLimit = &limit
	}
	if options.NumDeleted {
		msgs, err := f.Sync()
		if err != nil {
			return nil, fmt.Errorf("status %q: %w", name, err)
		}
		var n uint32
		for i := range msgs {
			if hasFlag(msgs[i].Flags, mailstore.FlagDeleted) {
				n++
			}
		}
		data.NumDeleted = &n
	}
	return data, nil
}

// List implements LIST and LSUB (RFC 3501 §6.3.8-9) with LIST-EXTENDED
// (RFC 5258), LIST-STATUS (RFC 5819), SPECIAL-USE (RFC 6154) and CHILDREN
// (RFC 3348).
func (sess *session) List(w *imapserver.ListWriter, ref string, patterns []string, options *imap.ListOptions) error {
	return sess.do("list", "LIST "+quoteForLog(ref)+" "+strings.Join(patterns, " "), func() error {
		return sess.list(w, ref, patterns, options)
	})
}

func (sess *session) list(w *imapserver.ListWriter, ref string, patterns []string, options *imap.ListOptions) error {
	if len(patterns) == 0 {
		// LIST "" "": the hierarchy delimiter and root (RFC 3501 §6.3.8).
		return w.WriteList(&imap.ListData{Attrs: []imap.MailboxAttr{imap.MailboxAttrNoSelect}, Delim: delim})
	}
	folders, err := sess.user.Folders()
	if err != nil {
		return fmt.Errorf("listing folders: %w", err)
	}
	subs, err := sess.user.Subscriptions()
	if err != nil {
		return fmt.Errorf("listing subscriptions: %w", err)
	}
	subscribed := make(map[string]bool, len(subs))
	for _, s := range subs {
		subscribed[s] = true
	}
	exists := make(map[string]bool, len(folders))
	for _, f := range folders {
		exists[f.Name] = true
	}

	type entry struct {
		info      mailstore.FolderInfo
		exists    bool
		childInfo bool
	}
	var entries []entry
	if options.SelectSubscribed {
		for _, name := range subs {
			e := entry{info: mailstore.FolderInfo{Name: name, Subscribed: true}, exists: exists[name]}
			for _, f := range folders {
				if f.Name == name {
					e.info = f
					e.info.Subscribed = true
				}
			}
			entries = append(entries, e)
		}
		if options.SelectRecursiveMatch {
			// Parents of subscribed folders that match although they
			// are not subscribed themselves (RFC 5258 §3.5).
			for _, f := range folders {
				if subscribed[f.Name] {
					continue
				}
				for _, s := range subs {
					if strings.HasPrefix(s, f.Name+string(delim)) {
						entries = append(entries, entry{info: f, exists: true, childInfo: true})
						break
					}
				}
			}
		}
	} else {
		for _, f := range folders {
			f.Subscribed = subscribed[f.Name]
			entries = append(entries, entry{info: f, exists: true})
		}
	}

	for _, e := range entries {
		name := e.info.Name
		if !matchAny(name, ref, patterns) {
			continue
		}
		if options.SelectSpecialUse && e.info.SpecialUse == mailstore.UseNone {
			continue
		}
		data := &imap.ListData{Delim: delim, Mailbox: name}
		if !e.exists {
			data.Attrs = append(data.Attrs, imap.MailboxAttrNonExistent)
		} else if e.info.NoSelect {
			// A parent whose own folder was deleted, kept for its children
			// (RFC 3501 §6.3.4), as Dovecot shows it.
			data.Attrs = append(data.Attrs, imap.MailboxAttrNoSelect, imap.MailboxAttrHasChildren)
		} else if e.info.HasChildren {
			data.Attrs = append(data.Attrs, imap.MailboxAttrHasChildren)
		} else {
			data.Attrs = append(data.Attrs, imap.MailboxAttrHasNoChildren)
		}
		if e.info.Subscribed && (options.ReturnSubscribed || options.SelectSubscribed) {
			data.Attrs = append(data.Attrs, imap.MailboxAttrSubscribed)
		}
		if attr := specialUseToIMAP(e.info.SpecialUse); attr != "" {
			data.Attrs = append(data.Attrs, attr)
		}
		if e.childInfo {
			data.ChildInfo = &imap.ListDataChildInfo{Subscribed: true}
		}
		if options.ReturnStatus != nil && e.exists {
			st, err := sess.status(name, options.ReturnStatus)
			if err != nil {
				// A folder removed meanwhile just has no STATUS.
				sess.srv.log.Debug("LIST-STATUS", "folder", name, "err", err)
			} else {
				data.Status = st
			}
		}
		if err := w.WriteList(data); err != nil {
			return err
		}
	}
	return nil
}

// matchAny applies RFC 3501 §6.3.8 wildcards; INBOX matches in any case.
func matchAny(name, ref string, patterns []string) bool {
	for _, p := range patterns {
		if imapserver.MatchList(name, delim, ref, p) {
			return true
		}
		if name == mailstore.Inbox || strings.HasPrefix(name, mailstore.Inbox+string(delim)) {
			if imapserver.MatchList(name, delim, strings.ToUpper(ref), strings.ToUpper(p)) {
				return true
			}
		}
	}
	return false
}

func specialUseToIMAP(u mailstore.SpecialUse) imap.MailboxAttr {
	return imap.MailboxAttr(u)
}

func specialUseFromIMAP(a imap.MailboxAttr) (mailstore.SpecialUse, bool) {
	for _, u := range []mailstore.SpecialUse{mailstore.UseSent, mailstore.UseDrafts, mailstore.UseTrash, mailstore.UseJunk, mailstore.UseArchive} {
		if strings.EqualFold(string(a), string(u)) {
			return u, true
		}
	}
	return mailstore.UseNone, false
}
