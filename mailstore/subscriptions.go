package mailstore

// The "subscriptions" file, in Dovecot 2.3's format: a "V\t2" header and an
// empty line, then one name per line with hierarchy levels separated by TAB
// and each level in modified UTF-7. The older format (one name per line,
// "." separated) is read too.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

const subscriptionsFile = "subscriptions"

func parseSubscriptions(data []byte) map[string]bool {
	out := map[string]bool{}
	lines := strings.Split(string(data), "\n")
	sep := "."
	if len(lines) > 0 && strings.HasPrefix(lines[0], "V\t") {
		lines, sep = lines[1:], "\t"
	}
	for _, l := range lines {
		if l == "" {
			continue
		}
		enc := strings.Split(l, sep)
		parts := make([]string, len(enc))
		for i, e := range enc {
			d, err := decodeMUTF7(e)
			if err != nil {
				d = e
			}
			parts[i] = d
		}
		if n, _, err := checkFolderName(strings.Join(parts, Separator)); err == nil {
			out[n] = true
		}
	}
	return out
}

func marshalSubscriptions(subs map[string]bool) []byte {
	names := make([]string, 0, len(subs))
	for n, on := range subs {
		if on {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("V\t2\n\n")
	for _, n := range names {
		parts := strings.Split(n, Separator)
		for i, p := range parts {
			parts[i] = encodeMUTF7(p)
		}
		b.WriteString(strings.Join(parts, "\t"))
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

// readSubscriptions reads the file. Caller holds st.mu.
func (st *userState) readSubscriptions() (map[string]bool, error) {
	data, err := os.ReadFile(filepath.Join(st.dir, subscriptionsFile))
	if errors.Is(err, os.ErrNotExist) {
		return map[string]bool{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("mailstore: read subscriptions of %s: %w", st.name, err)
	}
	return parseSubscriptions(data), nil
}

// addSubscriptions subscribes names. Caller holds st.mu.
func (st *userState) addSubscriptions(names []string) error {
	subs, err := st.readSubscriptions()
	if err != nil {
		return err
	}
	for _, n := range names {
		subs[n] = true
	}
	return st.writeSubscriptions(subs)
}

func (st *userState) writeSubscriptions(subs map[string]bool) error {
	if err := st.s.aw.WriteFile(filepath.Join(st.dir, subscriptionsFile), marshalSubscriptions(subs)); err != nil {
		return fmt.Errorf("mailstore: write subscriptions of %s: %w", st.name, err)
	}
	return nil
}

// SetSubscribed subscribes or unsubscribes name (kept in Dovecot's
// "subscriptions" file). Unknown names may be subscribed (RFC 3501 §6.3.6).
func (u *User) SetSubscribed(name string, on bool) error {
	canon, _, err := u.folderName(name)
	if err != nil {
		return err
	}
	st := u.st
	st.mu.Lock()
	defer st.mu.Unlock()
	subs, err := st.readSubscriptions()
	if err != nil {
		return err
	}
	if subs[canon] == on {
		return nil
	}
	if on {
		subs[canon] = true
	} else {
		delete(subs, canon)
	}
	return st.writeSubscriptions(subs)
}

// Subscriptions lists subscribed names.
func (u *User) Subscriptions() ([]string, error) {
	if err := u.s.checkOpen(); err != nil {
		return nil, err
	}
	u.st.mu.Lock()
	subs, err := u.st.readSubscriptions()
	u.st.mu.Unlock()
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(subs))
	for n := range subs {
		out = append(out, n)
	}
	sort.Strings(out)
	return out, nil
}
