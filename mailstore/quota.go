package mailstore

// Quota accounting: bytes and messages per user, summed from file names
// (",S=") or stat, cached per directory and recomputed only when the
// directory's stamp changed, so changes made behind our back (Dovecot, a
// delivery agent, a user deleting files by hand) are counted too.
//
// Deliveries are the exception: each one changes new/, and recounting a
// new/ that holds thousands of unread messages at every RCPT and Commit
// made a user with a quota take 88 deliveries a second instead of 1,500.
// So a delivery adds its own size to the cached count, and delivery-time
// checks accept a count up to quotaRecount old; other changes made in that
// time are seen at the next recount. Quotas are soft (QuotaGrace) and
// this errs by at most a second's changes. APPEND, COPY and Usage always
// recount a changed directory.

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// quotaRecount is how old a delivery-time quota check lets a count be.
const quotaRecount = time.Second

type dirUsage struct {
	st          stamp     // of the directory when counted; zero once a delivery added to it
	at          time.Time // when counted
	bytes, msgs int64
}

type quotaState struct {
	mu   sync.Mutex
	dirs map[string]dirUsage // by new/ or cur/ path
}

func (q *quotaState) invalidate() {
	q.mu.Lock()
	q.dirs = nil
	q.mu.Unlock()
}

// added counts a message of size octets just delivered into dir (a new/).
// The stamp is cleared: a listing made between the link and this call may
// have counted the message already, so only a recount is exact again.
func (q *quotaState) added(dir string, size int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if u, ok := q.dirs[dir]; ok {
		u.bytes += size
		u.msgs++
		u.st = stamp{}
		q.dirs[dir] = u
	}
}

// usage sums every folder of the user. With recent, a directory counted
// less than quotaRecount ago is not recounted even if it changed. It reads
// the folder list without st.mu: a folder created meanwhile is counted on
// the next call. Callers hold no index lock.
func (st *userState) usage(recent bool) (bytes, msgs int64, err error) {
	names, err := st.folderNames()
	if err != nil {
		return 0, 0, err
	}
	dirs := []string{st.dir}
	for _, n := range names {
		_, d, err := st.folderDir(n)
		if err == nil {
			dirs = append(dirs, d)
		}
	}
	// Folders with a fresh in-memory index are summed from it: no listing.
	var rest []string
	for _, d := range dirs {
		if b, n, ok := st.s.indexUsage(d); ok {
			bytes += b
			msgs += n
			continue
		}
		rest = append(rest, d)
	}
	q := &st.quota
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.dirs == nil {
		q.dirs = make(map[string]dirUsage)
	}
	fresh := make(map[string]dirUsage, 2*len(rest))
	now := time.Now()
	for _, d := range rest {
		for _, sub := range []string{"new", "cur"} {
			p := filepath.Join(d, sub)
			stp, err := statStamp(p)
			if err != nil {
				continue // folder removed meanwhile
			}
			u, ok := q.dirs[p]
			if !ok || (u.st != stp && (!recent || now.Sub(u.at) >= quotaRecount)) {
				if u, err = scanUsage(p); err != nil {
					return 0, 0, fmt.Errorf("mailstore: quota of %s: %w", st.name, err)
				}
				u.st, u.at = stp, now
			}
			fresh[p] = u
			bytes += u.bytes
			msgs += u.msgs
		}
	}
	q.dirs = fresh
	return bytes, msgs, nil
}

// indexUsage sums a loaded index if it is up to date with the disk.
func (s *Store) indexUsage(dir string) (bytes, msgs int64, ok bool) {
	ix := s.loadedIndex(dir)
	if ix == nil {
		return 0, 0, false
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if !ix.loaded || ix.gone || ix.newDirty {
		return 0, 0, false
	}
	newSt, err1 := statStamp(ix.path("new"))
	curSt, err2 := statStamp(ix.path("cur"))
	if err1 != nil || err2 != nil || newSt != ix.newSt || curSt != ix.curSt {
		return 0, 0, false
	}
	for _, m := range ix.msgs {
		bytes += m.size
	}
	return bytes, int64(len(ix.msgs)), true
}

func scanUsage(dir string) (dirUsage, error) {
	var u dirUsage
	names, err := readDirNames(dir)
	if err != nil {
		return u, err
	}
	for _, n := range names {
		key, _, _ := splitFileName(n)
		if !validKey(key) {
			continue
		}
		size, _ := keySizes(key)
		if size < 0 {
			fi, err := os.Lstat(filepath.Join(dir, n))
			if err != nil {
				continue
			}
			size = fi.Size()
		}
		u.bytes += size
		u.msgs++
	}
	return u, nil
}

// limit returns the user's quota in bytes, 0 for none.
func (st *userState) limit() int64 {
	if st.s.opts.Quota == nil {
		return 0
	}
	return st.s.opts.Quota(st.name)
}

// checkQuota fails with ErrQuota if the user is at or over quota, or if
// size more octets would exceed it (with grace: by more than QuotaGrace).
// delivery allows a count up to quotaRecount old (see the top of the file).
func (st *userState) checkQuota(size int64, grace, delivery bool) error {
	limit := st.limit()
	if limit <= 0 {
		return nil
	}
	used, _, err := st.usage(delivery)
	if err != nil {
		return err
	}
	max := limit
	if grace {
		max = limit + int64(float64(limit)*st.s.opts.QuotaGrace)
	}
	if used >= limit || used+size > max {
		return fmt.Errorf("%w: %s uses %d of %d bytes", ErrQuota, st.name, used, limit)
	}
	return nil
}

// CheckQuota returns an error wrapping ErrQuota if user is already at or over
// quota, or would be with size more octets (size may be 0 if unknown).
func (s *Store) CheckQuota(user string, size int64) error {
	st, err := s.userState(user)
	if err != nil {
		return err
	}
	return st.checkQuota(size, false, true)
}

// Usage returns bytes and messages stored across all folders (quota).
func (u *User) Usage() (bytes int64, messages int64, err error) {
	if err := u.s.checkOpen(); err != nil {
		return 0, 0, err
	}
	return u.st.usage(false)
}
