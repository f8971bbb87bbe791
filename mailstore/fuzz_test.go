package mailstore

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"
)

func FuzzUIDList(f *testing.F) {
	f.Add([]byte("3 V1795364578 N3 G98f0d938e216036bf429000083ecc375\n1 :1795364578.M953807P10740.vm,S=14,W=16\n2 W5 S4 :1795364578.M957634P10740.vm,S=4,W=5\n"))
	f.Add([]byte("1 1234 5\n1 a:2,S\n4 b\n"))
	f.Add([]byte("3 V1 N1 Gx X9\n"))
	f.Add([]byte("3 V1 N1 G\n7 :x\n9 :y"))
	f.Add([]byte("3 V5 N9 Gabc\n2 X1700000000123456789 W12 :k1\n8 X-1 W :k2\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := parseUIDList(data)
		if err != nil {
			return
		}
		var last UID
		for _, r := range l.recs {
			if r.uid <= last || !validKey(r.key) {
				t.Fatalf("bad record accepted: %+v", r)
			}
			last = r.uid
			// Setting our date field keeps the others and reads back.
			ext := setExt(r.ext, dateExt, 1234)
			if v, ok := extInt(ext, dateExt); !ok || v != 1234 {
				t.Fatalf("setExt(%q) = %q", r.ext, ext)
			}
			if w, ok := extInt(r.ext, 'W'); ok {
				if w2, _ := extInt(ext, 'W'); w2 != w {
					t.Fatalf("setExt lost W: %q -> %q", r.ext, ext)
				}
			}
		}
		if l.nextUID <= last {
			t.Fatalf("next UID %d <= last %d", l.nextUID, last)
		}
		// What we write, we read back the same.
		l2, err := parseUIDList(l.marshal())
		if err != nil {
			t.Fatalf("re-parse: %v\n%q", err, l.marshal())
		}
		if l2.uidValidity != l.uidValidity || l2.nextUID != l.nextUID || len(l2.recs) != len(l.recs) {
			t.Fatalf("round trip differs: %+v vs %+v", l, l2)
		}
		for i := range l.recs {
			if l.recs[i] != l2.recs[i] {
				t.Fatalf("record %d: %+v vs %+v", i, l.recs[i], l2.recs[i])
			}
		}
	})
}

func FuzzKeywords(f *testing.F) {
	f.Add([]byte("0 $Forwarded\n1 Junk\n"))
	f.Add([]byte("25 z\n3 x\n"))
	f.Add([]byte("26 bad\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		kt, err := parseKeywords(data)
		if err != nil {
			return
		}
		for _, k := range kt.list() {
			if !validKeyword(k) {
				t.Fatalf("invalid keyword accepted: %q", k)
			}
			if c := kt.letter(k); c < 'a' || c > 'z' {
				t.Fatalf("keyword %q letter %q", k, c)
			}
		}
		kt2, err := parseKeywords(kt.marshal())
		if err != nil || *kt2 != *kt {
			t.Fatalf("round trip: %v %+v %+v", err, kt, kt2)
		}
	})
}

func FuzzFolderNameCodec(f *testing.F) {
	for _, s := range []string{"INBOX", "Ärger", "日本語", "a&b", "&", "~peter/mail/台北/日本語", "\U0001F600 smile", "x\x00y", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if utf8.ValidString(s) {
			enc := encodeMUTF7(s)
			for i := 0; i < len(enc); i++ {
				if enc[i] < 0x20 || enc[i] > 0x7e {
					t.Fatalf("encoding of %q has byte %#x", s, enc[i])
				}
			}
			dec, err := decodeMUTF7(enc)
			if err != nil || dec != s {
				t.Fatalf("round trip %q -> %q -> %q (%v)", s, enc, dec, err)
			}
		}
		// Any string that decodes must re-encode to itself (canonical).
		if dec, err := decodeMUTF7(s); err == nil {
			if enc := encodeMUTF7(dec); enc != s {
				t.Fatalf("non-canonical %q accepted (decodes to %q, encodes to %q)", s, dec, enc)
			}
		}
		// A name we accept maps to one safe directory name and back.
		canon, parts, err := checkFolderName(s)
		if err != nil {
			return
		}
		if canon == Inbox {
			return
		}
		dir := folderDirName(parts)
		if len(dir) > 255 || strings.ContainsAny(dir, "/\x00") || dir == "." || dir == ".." || strings.HasPrefix(dir, "..") {
			t.Fatalf("unsafe directory %q for %q", dir, s)
		}
		back, ok := folderNameFromDir(dir)
		if !ok || back != canon {
			t.Fatalf("dir %q maps back to %q %v, want %q", dir, back, ok, canon)
		}
	})
}

func FuzzCache(f *testing.F) {
	var good bytes.Buffer
	good.WriteString(cacheMagic + "7\n")
	good.Write(cacheRecord(1, "env", []byte("value")))
	good.Write(cacheRecord(2, "", nil))
	f.Add(good.Bytes())
	f.Add(append(good.Bytes(), 0, 0, 0, 9, 1, 2))
	f.Add([]byte(cacheMagic + "7\n\x00\x00\x00\x06"))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, n, err := parseCache(data, 7)
		if err != nil {
			return
		}
		total := 0
		for _, kv := range entries {
			total += len(kv)
		}
		if total > n {
			t.Fatalf("%d entries from %d records", total, n)
		}
		// Re-encoding the entries parses to the same thing.
		var b bytes.Buffer
		b.WriteString(cacheMagic + "7\n")
		for uid, kv := range entries {
			for k, v := range kv {
				b.Write(cacheRecord(uid, k, v))
			}
		}
		e2, _, err := parseCache(b.Bytes(), 7)
		if err != nil || len(e2) != len(entries) {
			t.Fatalf("round trip: %v", err)
		}
		for uid, kv := range entries {
			for k, v := range kv {
				if !bytes.Equal(e2[uid][k], v) {
					t.Fatalf("uid %d key %q differs", uid, k)
				}
			}
		}
	})
}

func FuzzFileName(f *testing.F) {
	for _, s := range []string{
		"1795364578.M957634P10740.vm,S=4,W=5:2,Sab", "1795364578.M953807P10740.vm,S=14,W=16",
		"1700000000.4242.oldhost", "1700000000.R4f3aP2.h", "1700000000.M5P1V803I1234.h",
		"x:2,", "x:1,foo", "a,S=-1,W=abc:2,ZYX", "123.abc:2,FRST", ":2,", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		key, info, has := splitFileName(name)
		if !has && info != "" {
			t.Fatal("info without :2,")
		}
		if strings.ContainsRune(key, ':') {
			t.Fatalf("key %q contains ':'", key)
		}
		if has && fileName(key, info) != name {
			t.Fatalf("%q -> %q %q does not rebuild", name, key, info)
		}
		size, vsize := keySizes(key)
		if size < -1 || vsize < -1 {
			t.Fatalf("negative sizes %d %d", size, vsize)
		}
		if o := orderOf(key, 1795364578123456789); o.sec < 0 || o.nsec < 0 || o.nsec >= 1e9 || o.compare(o) != 0 {
			t.Fatalf("orderOf(%q) = %+v", key, o)
		}
		s := sortInfo([]byte(info))
		for i := 1; i < len(s); i++ {
			if s[i] <= s[i-1] {
				t.Fatalf("sortInfo(%q) = %q", info, s)
			}
		}
		sub := parseSubscriptions([]byte(name))
		for n := range sub {
			if _, _, err := checkFolderName(n); err != nil {
				t.Fatalf("subscription %q accepted", n)
			}
		}
	})
}
