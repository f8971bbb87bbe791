package mailstore

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// FlagOp says how SetFlags combines flags.
type FlagOp int

const (
	FlagsAdd FlagOp = iota
	FlagsRemove
	FlagsReplace
)

// SetFlags changes flags of uids (renaming their files) and returns their
// new info. Missing UIDs are skipped. The renames are fsynced before it
// returns.
func (f *Folder) SetFlags(uids []UID, op FlagOp, flags []Flag) ([]MessageInfo, error) {
	sys, kws, err := splitFlags(flags)
	if err != nil {
		return nil, err
	}
	ix, err := f.lock()
	if err != nil {
		return nil, err
	}
	defer ix.mu.Unlock()
	var letters []byte
	if op == FlagsRemove {
		// Removing an undefined keyword is a no-op: do not define it.
		for _, k := range kws {
			if c := ix.kw.letter(k); c != 0 {
				letters = append(letters, c)
			}
		}
	} else if letters, err = ix.keywordLetters(kws); err != nil {
		return nil, err
	}
	change := string(append(sys, letters...))
	before, _ := statStamp(ix.path("cur"))
	beforeNew, _ := statStamp(ix.path("new"))
	var out []MessageInfo
	var changed []UID
	resyncs := 0
	for _, uid := range uids {
		m := ix.find(uid)
		if m == nil {
			continue
		}
		info := applyFlags(m.info, op, change)
		if info == m.info && !m.inNew {
			out = append(out, ix.info(m))
			continue
		}
		err := os.Rename(ix.msgPath(m), ix.path("cur", fileName(m.key, info)))
		if errors.Is(err, os.ErrNotExist) && resyncs < 3 {
			// Renamed or expunged by another process: re-read and retry.
			resyncs++
			if _, serr := ix.syncLocked(true, true); serr != nil {
				return nil, serr
			}
			if m = ix.find(uid); m == nil {
				continue
			}
			info = applyFlags(m.info, op, change)
			err = os.Rename(ix.msgPath(m), ix.path("cur", fileName(m.key, info)))
		}
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("mailstore: set flags in %s: %w", f.name, err)
		}
		m.info, m.inNew = info, false
		changed = append(changed, uid)
		out = append(out, ix.info(m))
	}
	if len(changed) > 0 {
		// Adopt the directories' new stamps right after our renames (the
		// shorter the gap, the smaller the chance of hiding someone
		// else's change in it), then make the renames durable.
		ix.adoptDir(before, "cur")
		ix.adoptDir(beforeNew, "new")
		if err := ix.s.dirSyncer(ix.path("cur")).sync(); err != nil {
			return nil, fmt.Errorf("mailstore: set flags in %s: %w", f.name, err)
		}
		f.u.st.hub.publish(Event{User: f.u.st.name, Folder: f.name, Kind: EventFlags, UIDs: changed})
	}
	return out, nil
}

// applyFlags combines info letters. Letters we do not map (e.g. P,
// "passed") are kept unless replaced.
func applyFlags(info string, op FlagOp, change string) string {
	var b []byte
	switch op {
	case FlagsAdd:
		b = append([]byte(info), change...)
	case FlagsRemove:
		for i := 0; i < len(info); i++ {
			if strings.IndexByte(change, info[i]) < 0 {
				b = append(b, info[i])
			}
		}
	case FlagsReplace:
		for i := 0; i < len(info); i++ {
			if c := info[i]; c == 'P' { // not an IMAP flag: keep
				b = append(b, c)
			}
		}
		b = append(b, change...)
	}
	return sortInfo(b)
}
