package mailstore

// The per-folder cache of data protocols derive from messages (envelopes,
// body structures), in "mailsuite.cache": a header line
// "mailsuite-cache 1 <uidvalidity>\n", then append-only records
//
//	u32 body length | u32 CRC-32 (IEEE) of body | body
//	body = u32 uid | u16 key length | key | value
//
// (big-endian). Loading stops at the first record that is short or fails
// its checksum, so a torn append is ignored. The cache is advisory: any
// problem drops it, and it is rebuilt as protocols call SetCached.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"strconv"
)

const (
	cacheFile      = "mailsuite.cache"
	cacheMagic     = "mailsuite-cache 1 "
	maxCacheRecord = 1 << 20
)

type msgCache struct {
	path        string
	uidValidity uint32
	entries     map[UID]map[string][]byte
	records     int      // records in the file
	dead        int      // records for expunged messages or overwritten keys
	f           *os.File // open for appending, lazily; closed by closeFile
}

func (c *msgCache) closeFile() {
	if c != nil && c.f != nil {
		c.f.Close()
		c.f = nil
	}
}

// parseCache decodes a cache file; records after a damaged one are lost.
func parseCache(data []byte, uidValidity uint32) (map[UID]map[string][]byte, int, error) {
	nl := bytes.IndexByte(data, '\n')
	if nl < 0 || !bytes.HasPrefix(data, []byte(cacheMagic)) {
		return nil, 0, errors.New("bad cache header")
	}
	v, err := strconv.ParseUint(string(data[len(cacheMagic):nl]), 10, 32)
	if err != nil || uint32(v) != uidValidity {
		return nil, 0, errors.New("cache of another UIDVALIDITY")
	}
	entries := map[UID]map[string][]byte{}
	n := 0
	rest := data[nl+1:]
	for len(rest) >= 8 {
		l := binary.BigEndian.Uint32(rest)
		sum := binary.BigEndian.Uint32(rest[4:])
		if l < 6 || l > maxCacheRecord || uint64(len(rest)-8) < uint64(l) {
			break
		}
		body := rest[8 : 8+l]
		if crc32.ChecksumIEEE(body) != sum {
			break
		}
		rest = rest[8+l:]
		uid := UID(binary.BigEndian.Uint32(body))
		kl := int(binary.BigEndian.Uint16(body[4:]))
		if 6+kl > len(body) {
			break
		}
		key := string(body[6 : 6+kl])
		val := bytes.Clone(body[6+kl:])
		if entries[uid] == nil {
			entries[uid] = map[string][]byte{}
		}
		entries[uid][key] = val
		n++
	}
	return entries, n, nil
}

func cacheRecord(uid UID, key string, value []byte) []byte {
	body := make([]byte, 6+len(key)+len(value))
	binary.BigEndian.PutUint32(body, uint32(uid))
	binary.BigEndian.PutUint16(body[4:], uint16(len(key)))
	copy(body[6:], key)
	copy(body[6+len(key):], value)
	rec := make([]byte, 8, 8+len(body))
	binary.BigEndian.PutUint32(rec, uint32(len(body)))
	binary.BigEndian.PutUint32(rec[4:], crc32.ChecksumIEEE(body))
	return append(rec, body...)
}

// loadCache reads the cache on first use. Caller holds ix.mu.
func (ix *index) loadCache() *msgCache {
	if ix.cache != nil && ix.cache.uidValidity == ix.uidValidity {
		return ix.cache
	}
	ix.cache.closeFile()
	c := &msgCache{path: ix.path(cacheFile), uidValidity: ix.uidValidity, entries: map[UID]map[string][]byte{}}
	ix.cache = c
	data, err := os.ReadFile(c.path)
	if err != nil {
		return c
	}
	entries, n, err := parseCache(data, ix.uidValidity)
	if err != nil {
		os.Remove(c.path)
		return c
	}
	c.records = n
	for uid, kv := range entries {
		if ix.find(uid) == nil {
			c.dead += len(kv)
			continue
		}
		c.entries[uid] = kv
	}
	return c
}

func (c *msgCache) forget(uids []UID) {
	for _, u := range uids {
		c.dead += len(c.entries[u])
		delete(c.entries, u)
	}
}

// Cached returns data a protocol stored for a message under key (e.g. a
// serialised IMAP envelope), if present.
func (f *Folder) Cached(uid UID, key string) ([]byte, bool) {
	ix, err := f.lock()
	if err != nil {
		return nil, false
	}
	defer ix.mu.Unlock()
	v, ok := ix.loadCache().entries[uid][key]
	return v, ok
}

// SetCached stores data for a message under key. The cache is persistent
// (a per-folder file) but advisory: it may be dropped and rebuilt any time.
func (f *Folder) SetCached(uid UID, key string, value []byte) {
	if len(key) > 0xffff || len(value) > maxCacheRecord-6-len(key) {
		return
	}
	ix, err := f.lock()
	if err != nil {
		return
	}
	defer ix.mu.Unlock()
	if ix.find(uid) == nil {
		return
	}
	c := ix.loadCache()
	if err := c.append(uid, key, value); err != nil {
		ix.s.log.Warn("mailstore: cache write failed", "folder", f.name, "err", err)
		return
	}
	if c.dead > 1000 && c.dead > c.records/2 {
		if err := c.compact(ix.s); err != nil {
			ix.s.log.Warn("mailstore: cache compaction failed", "folder", f.name, "err", err)
		}
	}
}

func (c *msgCache) append(uid UID, key string, value []byte) error {
	kv := c.entries[uid]
	if kv == nil {
		kv = map[string][]byte{}
		c.entries[uid] = kv
	} else if _, ok := kv[key]; ok {
		c.dead++
	}
	kv[key] = bytes.Clone(value)
	if c.f == nil {
		f, err := os.OpenFile(c.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return err
		}
		c.f = f
		if st, err := f.Stat(); err == nil && st.Size() == 0 {
			if _, err := io.WriteString(f, fmt.Sprintf("%s%d\n", cacheMagic, c.uidValidity)); err != nil {
				c.closeFile()
				return err
			}
		}
	}
	// One write call per record: concurrent appenders do not interleave.
	if _, err := c.f.Write(cacheRecord(uid, key, value)); err != nil {
		c.closeFile()
		return err
	}
	c.records++
	return nil
}

// compact rewrites the file with live entries only.
func (c *msgCache) compact(s *Store) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s%d\n", cacheMagic, c.uidValidity)
	n := 0
	for uid, kv := range c.entries {
		for k, v := range kv {
			b.Write(cacheRecord(uid, k, v))
			n++
		}
	}
	c.closeFile() // the file is replaced: append to the new one
	if err := s.aw.WriteFile(c.path, b.Bytes()); err != nil {
		return err
	}
	c.records, c.dead = n, 0
	return nil
}
