package imapd

import (
	"slices"
	"sort"

	"github.com/emersion/go-imap/v2"

	"github.com/mailsuite/mailsuite/mailstore"
)

// view is a session's picture of its selected folder: the messages the
// client has been told about, in sequence-number order (index+1 is the
// sequence number). It is changed only by the session's own goroutine, and
// only when the change is also written to the client (EXISTS, EXPUNGE,
// FETCH FLAGS), so the client's and server's numbering agree
// (RFC 3501 §7.4.1, RFC 9051 §7.5.1).
type view struct {
	folder   *mailstore.Folder
	name     string
	readOnly bool
	msgs     []mailstore.MessageInfo
	dirty    bool // the folder changed since msgs was last reconciled
}

// find returns the index of uid, or -1.
func (v *view) find(uid mailstore.UID) int {
	i, ok := slices.BinarySearchFunc(v.msgs, uid, func(m mailstore.MessageInfo, u mailstore.UID) int {
		return cmpUID(m.UID, u)
	})
	if !ok {
		return -1
	}
	return i
}

func cmpUID(a, b mailstore.UID) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// resolve turns a sequence or UID set into view indexes, ascending and
// without duplicates. Numbers outside the view are skipped, as RFC 9051
// §6.4.8 asks for UIDs; a "*" means the last message (RFC 3501 §6.4.8).
func (v *view) resolve(set imap.NumSet, searchRes []mailstore.UID) []int {
	n := len(v.msgs)
	if n == 0 {
		return nil
	}
	var idx []int
	switch set := set.(type) {
	case imap.SeqSet:
		for _, r := range set {
			lo, hi := span(r.Start, r.Stop, uint32(n))
			for s := lo; s <= hi && s <= uint32(n); s++ {
				idx = append(idx, int(s)-1)
			}
		}
	case imap.UIDSet:
		if imap.IsSearchRes(set) {
			for _, uid := range searchRes {
				if i := v.find(uid); i >= 0 {
					idx = append(idx, i)
				}
			}
			break
		}
		last := v.msgs[n-1].UID
		for _, r := range set {
			l, h := span(uint32(r.Start), uint32(r.Stop), uint32(last))
			lo, hi := mailstore.UID(l), mailstore.UID(h)
			i := sort.Search(n, func(i int) bool { return v.msgs[i].UID >= lo })
			for ; i < n && v.msgs[i].UID <= hi; i++ {
				idx = append(idx, i)
			}
		}
	}
	if len(idx) > 1 {
		slices.Sort(idx)
		idx = slices.Compact(idx)
	}
	return idx
}

// span turns a range of a sequence or UID set into bounds: 0 stands for
// "*", the last number in use, and n:m equals m:n (RFC 3501 §9, seq-range).
func span(start, stop, last uint32) (lo, hi uint32) {
	if start == 0 {
		start = last
	}
	if stop == 0 {
		stop = last
	}
	if start > stop {
		start, stop = stop, start
	}
	return start, stop
}

// update is what reconcile found: expunged sequence numbers in the order
// they must be sent (descending, so earlier ones don't shift later ones),
// indexes (after expunges) whose flags changed, and whether the count grew.
type update struct {
	expunged []uint32
	changed  []int
	grew     bool
}

// reconcile merges the folder's current messages (UID order) into the view.
// If allowExpunge is false, expunged messages stay (the view stays dirty)
// because EXPUNGE may not be sent during FETCH, STORE or SEARCH
// (RFC 3501 §7.4.1).
func (v *view) reconcile(cur []mailstore.MessageInfo, allowExpunge bool) update {
	var u update
	old := v.msgs
	merged := make([]mailstore.MessageInfo, 0, max(len(cur), len(old)))
	j := 0
	kept := false
	for i, m := range old {
		for j < len(cur) && cur[j].UID < m.UID {
			j++ // a UID below one we announced: cannot be shown in order; skip
		}
		if j < len(cur) && cur[j].UID == m.UID {
			if !slices.Equal(cur[j].Flags, m.Flags) {
				u.changed = append(u.changed, len(merged))
			}
			merged = append(merged, cur[j])
			// \Recent belongs to the session that first saw the message
			// (RFC 3501 §2.3.2): keep what we told the client.
			merged[len(merged)-1].Recent = m.Recent
			j++
			continue
		}
		if allowExpunge {
			u.expunged = append(u.expunged, uint32(i+1))
		} else {
			merged = append(merged, m)
			kept = true
		}
	}
	var last mailstore.UID
	if len(old) > 0 {
		last = old[len(old)-1].UID
	}
	for ; j < len(cur); j++ {
		if cur[j].UID > last {
			merged = append(merged, cur[j])
			u.grew = true
		}
	}
	// Expunges are sent highest first; changed indexes were counted
	// in the merged (post-expunge) numbering already.
	slices.Reverse(u.expunged)
	v.msgs = merged
	v.dirty = kept
	return u
}

// remove drops the messages at idx (ascending) and returns their sequence
// numbers highest first, ready to be sent as EXPUNGE responses.
func (v *view) remove(idx []int) []uint32 {
	seqs := make([]uint32, len(idx))
	for k, i := range idx {
		seqs[len(idx)-1-k] = uint32(i + 1)
	}
	drop := make(map[int]bool, len(idx))
	for _, i := range idx {
		drop[i] = true
	}
	out := v.msgs[:0]
	for i, m := range v.msgs {
		if !drop[i] {
			out = append(out, m)
		}
	}
	clear(v.msgs[len(out):])
	v.msgs = out
	return seqs
}

// recent counts messages with \Recent in the view.
func (v *view) recent() uint32 {
	var n uint32
	for i := range v.msgs {
		if v.msgs[i].Recent {
			n++
		}
	}
	return n
}

func sortInts(s []int) { slices.Sort(s) }
