package integration

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/mailsuite/mailsuite/mailstore"
)

// An independent consistency check of one maildir folder as Dovecot would
// see it, written from the formats (not from mailstore's code), so a bug
// shared by writer and reader cannot hide:
//   - dovecot-uidlist v3: "3 V<uidvalidity> N<nextuid> ..." then
//     "<uid> [ext] :<base name>", UIDs strictly increasing;
//   - every file in cur/ and new/ is listed exactly once (run after a
//     client synced the folder); a listed name without a file is an
//     expunged message whose line waits for the next rewrite, as in
//     Dovecot, and is only counted;
//   - flags after ":2," are sorted maildir letters;
//   - ",S=<size>" in a name equals the file's size;
//   - every message is whole (checkMessage).

type storedMessage struct {
	UID  uint32
	Key  string
	ID   string // Message-ID
	Path string
}

type folderCheck struct {
	UIDValidity uint32
	NextUID     uint32
	Stale       int             // lines of expunged messages
	Messages    []storedMessage // in UID order
}

var reSize = regexp.MustCompile(`,S=(\d+)`)

func checkFolder(dir string) (*folderCheck, error) {
	fc := &folderCheck{}
	f, err := os.Open(filepath.Join(dir, "dovecot-uidlist"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	if !sc.Scan() {
		return nil, fmt.Errorf("%s: empty dovecot-uidlist", dir)
	}
	hdr := strings.Fields(sc.Text())
	if len(hdr) < 3 || hdr[0] != "3" {
		return nil, fmt.Errorf("%s: uidlist header %q is not version 3", dir, sc.Text())
	}
	for _, fld := range hdr[1:] {
		n, err := strconv.ParseUint(fld[1:], 10, 32)
		switch fld[0] {
		case 'V':
			if err != nil || n == 0 {
				return nil, fmt.Errorf("%s: bad UIDVALIDITY %q", dir, fld)
			}
			fc.UIDValidity = uint32(n)
		case 'N':
			if err != nil {
				return nil, fmt.Errorf("%s: bad next UID %q", dir, fld)
			}
			fc.NextUID = uint32(n)
		}
	}
	listed := map[string]uint32{}
	var last uint32
	for sc.Scan() {
		line := sc.Text()
		head, key, ok := strings.Cut(line, " :")
		if !ok {
			if u, k, ok2 := strings.Cut(line, " "); ok2 && strings.HasPrefix(k, ":") {
				head, key, ok = u, k[1:], true
			}
		}
		if !ok || key == "" {
			return nil, fmt.Errorf("%s: bad uidlist line %q", dir, line)
		}
		uid, err := strconv.ParseUint(strings.Fields(head)[0], 10, 32)
		if err != nil || uint32(uid) <= last {
			return nil, fmt.Errorf("%s: uidlist UID %q not increasing after %d", dir, head, last)
		}
		// Lines appended since the last rewrite may pass the header's N;
		// readers then take the last UID + 1 (as Dovecot does).
		fc.NextUID = max(fc.NextUID, uint32(uid)+1)
		if _, dup := listed[key]; dup {
			return nil, fmt.Errorf("%s: %s listed twice", dir, key)
		}
		last = uint32(uid)
		listed[key] = uint32(uid)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	found := map[string]string{}
	for _, sub := range []string{"new", "cur"} {
		ents, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			name := e.Name()
			key, info, _ := strings.Cut(name, ":2,")
			if _, dup := found[key]; dup {
				return nil, fmt.Errorf("%s: two files for %s", dir, key)
			}
			if !sortedLetters(info) {
				return nil, fmt.Errorf("%s: bad flags in %s", dir, name)
			}
			found[key] = filepath.Join(dir, sub, name)
		}
	}
	for key, path := range found {
		uid, ok := listed[key]
		if !ok {
			return nil, fmt.Errorf("%s: %s has no UID", dir, path)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		if m := reSize.FindStringSubmatch(key); m != nil && m[1] != strconv.Itoa(len(data)) {
			return nil, fmt.Errorf("%s: S=%s but %d bytes", path, m[1], len(data))
		}
		id, err := checkMessage(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		fc.Messages = append(fc.Messages, storedMessage{UID: uid, Key: key, ID: id, Path: path})
	}
	for key := range listed {
		if _, ok := found[key]; !ok {
			fc.Stale++ // expunged; Dovecot too drops such lines only on a rewrite
		}
	}
	sortByUID(fc.Messages)
	return fc, nil
}

// sortedLetters: maildir info "2," flags are ASCII letters in order.
func sortedLetters(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') || (i > 0 && s[i-1] >= c) {
			return false
		}
	}
	return true
}

func sortByUID(ms []storedMessage) {
	sort.Slice(ms, func(i, j int) bool { return ms[i].UID < ms[j].UID })
}

// requireStoreCheck runs mailstore's own checker (what `mailsuite
// check-store` runs) over the tree: every problem it reports fails the
// test; notes (such as records of expunged files) are counted.
func requireStoreCheck(t testing.TB, what string, r mailstore.Report, err error) {
	t.Helper()
	if err != nil {
		t.Errorf("%s: store check: %v", what, err)
		return
	}
	notes := 0
	for _, f := range r.Findings {
		if f.Note {
			notes++
		} else {
			t.Errorf("%s: store check: %s", what, f)
		}
	}
	if notes > 0 {
		t.Logf("%s: store check: %d notes (e.g. records of expunged files)", what, notes)
	}
	if r.Messages == 0 {
		t.Errorf("%s: store check saw no messages (%+v)", what, r)
	}
}

// checkStoreCLI runs `mailsuite check-store -config ini` as an admin would
// (beside a running server or not): it must exit 0, no problem found.
func checkStoreCLI(t testing.TB, what, ini string) {
	t.Helper()
	out, err := exec.Command(mailsuiteBinary(t), "check-store", "-config", ini).CombinedOutput()
	if err != nil || !regexp.MustCompile(`(?m)^checked .*: 0 problem\(s\)`).Match(out) {
		t.Errorf("%s: mailsuite check-store: %v\n%s", what, err, out)
	}
}
