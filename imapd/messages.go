package imapd

import (
	"fmt"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/mailsuite/mailsuite/mailstore"
)

// Append implements APPEND (RFC 3501 §6.3.11, APPENDUID RFC 4315,
// APPENDLIMIT RFC 7889). The store makes the message durable before we
// answer OK.
func (sess *session) Append(mailbox string, r imap.LiteralReader, options *imap.AppendOptions) (*imap.AppendData, error) {
	var data *imap.AppendData
	err := sess.do("append", fmt.Sprintf("APPEND %s %v {%d}", mailbox, options.Flags, r.Size()), func() error {
		name, err := canonName(mailbox)
		if err != nil {
			return err
		}
		f, err := sess.user.Folder(name)
		if err != nil {
			return fmt.Errorf("append to %q: %w", name, err)
		}
		date := options.Time
		if date.IsZero() {
			date = time.Now()
		}
		uid, err := f.Append(r, storeFlags(options.Flags), date)
		if err != nil {
			return fmt.Errorf("append to %q: %w", name, err)
		}
		sess.touched(f)
		data = &imap.AppendData{UID: imap.UID(uid), UIDValidity: f.UIDValidity()}
		return nil
	})
	return data, err
}

// touched marks the view dirty when a command of ours changed the selected
// folder, so the poll at the end of the command announces it without
// waiting for the store's event.
func (sess *session) touched(f *mailstore.Folder) {
	if sess.sel != nil && sess.sel.name == f.Name() {
		sess.sel.dirty = true
	}
}

// storeFlags converts flags for the store, dropping \Recent, which clients
// cannot set (RFC 3501 §2.3.2).
func storeFlags(flags []imap.Flag) []mailstore.Flag {
	out := make([]mailstore.Flag, 0, len(flags))
	for _, f := range flags {
		if f == "\\Recent" || f == imap.FlagWildcard {
			continue
		}
		out = append(out, mailstore.Flag(f))
	}
	return out
}

// Store implements STORE and UID STORE (RFC 3501 §6.4.6).
func (sess *session) Store(w *imapserver.FetchWriter, numSet imap.NumSet, flags *imap.StoreFlags, _ *imap.StoreOptions) error {
	op := map[imap.StoreFlagsOp]string{imap.StoreFlagsSet: "", imap.StoreFlagsAdd: "+", imap.StoreFlagsDel: "-"}[flags.Op]
	item := op + "FLAGS"
	if flags.Silent {
		item += ".SILENT"
	}
	_, uidCmd := numSet.(imap.UIDSet)
	line := fmt.Sprintf("STORE %v %s %v", numSet, item, flags.Flags)
	if uidCmd {
		line = "UID " + line
	}
	return sess.do("store", line, func() error {
		v := sess.sel
		if v == nil {
			return errNoSelect
		}
		if v.readOnly {
			return errReadOnly
		}
		idx := v.resolve(numSet, sess.searchRes)
		if len(idx) == 0 {
			return nil
		}
		uids := make([]mailstore.UID, len(idx))
		for k, i := range idx {
			uids[k] = v.msgs[i].UID
		}
		fop := map[imap.StoreFlagsOp]mailstore.FlagOp{
			imap.StoreFlagsSet: mailstore.FlagsReplace, imap.StoreFlagsAdd: mailstore.FlagsAdd, imap.StoreFlagsDel: mailstore.FlagsRemove,
		}[flags.Op]
		infos, err := v.folder.SetFlags(uids, fop, storeFlags(flags.Flags))
		if err != nil {
			return fmt.Errorf("store flags in %q: %w", v.name, err)
		}
		for k := range infos {
			if i := v.find(infos[k].UID); i >= 0 {
				recent := v.msgs[i].Recent
				v.msgs[i] = infos[k]
				v.msgs[i].Recent = recent
			}
		}
		if len(infos) < len(uids) {
			v.dirty = true // some were expunged meanwhile
		}
		if flags.Silent {
			return nil
		}
		for _, uid := range uids {
			i := v.find(uid)
			if i < 0 {
				continue
			}
			rw := w.CreateMessage(uint32(i + 1))
			if uidCmd {
				rw.WriteUID(imap.UID(uid))
			}
			rw.WriteFlags(imapFlags(&v.msgs[i]))
			if err := rw.Close(); err != nil {
				return err
			}
		}
		return nil
	})
}

// Copy implements COPY and UID COPY with COPYUID (RFC 3501 §6.4.7,
// RFC 4315 §3).
func (sess *session) Copy(numSet imap.NumSet, dest string) (*imap.CopyData, error) {
	var data *imap.CopyData
	err := sess.do("copy", fmt.Sprintf("COPY %v %s", numSet, dest), func() error {
		var err error
		data, err = sess.transfer(numSet, dest, false, nil)
		return err
	})
	return data, err
}

// Move implements MOVE and UID MOVE (RFC 6851): COPYUID first, then the
// EXPUNGEs of the moved messages.
func (sess *session) Move(w *imapserver.MoveWriter, numSet imap.NumSet, dest string) error {
	return sess.do("move", fmt.Sprintf("MOVE %v %s", numSet, dest), func() error {
		_, err := sess.transfer(numSet, dest, true, w)
		return err
	})
}

func (sess *session) transfer(numSet imap.NumSet, dest string, move bool, w *imapserver.MoveWriter) (*imap.CopyData, error) {
	v := sess.sel
	if v == nil {
		return nil, errNoSelect
	}
	if move && v.readOnly {
		return nil, errReadOnly
	}
	name, err := canonName(dest)
	if err != nil {
		return nil, err
	}
	df, err := sess.user.Folder(name)
	if err != nil {
		return nil, fmt.Errorf("opening %q: %w", name, err)
	}
	idx := v.resolve(numSet, sess.searchRes)
	uids := make([]mailstore.UID, len(idx))
	for k, i := range idx {
		uids[k] = v.msgs[i].UID
	}
	var src, dst []mailstore.UID
	if len(uids) > 0 {
		if move {
			src, dst, err = v.folder.MoveTo(uids, df)
		} else {
			src, dst, err = v.folder.CopyTo(uids, df)
		}
		if err != nil {
			return nil, fmt.Errorf("copy/move to %q: %w", name, err)
		}
	}
	sess.touched(df)
	data := &imap.CopyData{UIDValidity: df.UIDValidity()}
	for k := range src {
		data.SourceUIDs.AddNum(imap.UID(src[k]))
		data.DestUIDs.AddNum(imap.UID(dst[k]))
	}
	if !move {
		return data, nil
	}
	if len(src) > 0 {
		if err := w.WriteCopyData(data); err != nil {
			return nil, err
		}
	}
	return data, sess.announceRemoved(v, src, w.WriteExpunge)
}

// announceRemoved drops uids from the view and sends their EXPUNGEs.
func (sess *session) announceRemoved(v *view, uids []mailstore.UID, write func(uint32) error) error {
	var idx []int
	for _, uid := range uids {
		if i := v.find(uid); i >= 0 {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return nil
	}
	sortInts(idx)
	for _, seq := range v.remove(idx) {
		if err := write(seq); err != nil {
			return err
		}
	}
	return nil
}

// Expunge implements EXPUNGE, UID EXPUNGE (RFC 4315 §2.1) and the silent
// expunge of CLOSE (go-imap passes a writer that discards).
func (sess *session) Expunge(w *imapserver.ExpungeWriter, uids *imap.UIDSet) error {
	line := "EXPUNGE"
	if uids != nil {
		line = "UID EXPUNGE " + uids.String()
	}
	return sess.do("expunge", line, func() error {
		v := sess.sel
		if v == nil {
			return errNoSelect
		}
		if v.readOnly {
			return nil // EXAMINE: CLOSE must not expunge (RFC 3501 §6.4.2)
		}
		var doomed []mailstore.UID
		for i := range v.msgs {
			m := &v.msgs[i]
			if hasFlag(m.Flags, mailstore.FlagDeleted) && (uids == nil || uids.Contains(imap.UID(m.UID))) {
				doomed = append(doomed, m.UID)
			}
		}
		if len(doomed) == 0 {
			return nil
		}
		removed, err := v.folder.Expunge(doomed)
		if err != nil {
			return fmt.Errorf("expunge in %q: %w", v.name, err)
		}
		return sess.announceRemoved(v, removed, w.WriteExpunge)
	})
}
