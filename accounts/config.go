package accounts

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// table is one validated, immutable account list. A Directory swaps whole
// tables, so readers never see a half-applied edit and never lock.
type table struct {
	domains map[string]bool
	users   map[string]*userEntry // canonical login address → user
	// rcpt maps every deliverable address (user, user alias, alias or list
	// key, "@domain" catch-all) to the enabled users who receive it. An
	// address that is present with an empty list matched only disabled
	// users: it is refused, and the catch-all does not apply.
	rcpt map[string][]string
	// owner maps a user's own address and each of their aliases to them:
	// the addresses they may send as.
	owner     map[string]string
	sorted    []User // by address
	dummy     *passwordHash
	dummyCRAM cramState
}

type userEntry struct {
	user User
	hash *passwordHash // nil when the user has no password: login impossible
	cram *cramState    // nil when CRAM-MD5 is impossible for them
}

// invalid wraps ErrInvalid with a message naming what is wrong.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// buildTable validates cfg and builds the lookup maps. All problems are
// reported at once (joined), each naming the offending address or key.
func buildTable(cfg Config) (*table, error) {
	var errs []error
	t := &table{
		domains: make(map[string]bool),
		users:   make(map[string]*userEntry),
		rcpt:    make(map[string][]string),
		owner:   make(map[string]string),
	}
	if len(cfg.Domains) == 0 {
		errs = append(errs, invalid("no local domains"))
	}
	for _, d := range cfg.Domains {
		cd, ok := canonicalDomain(d)
		switch {
		case !ok:
			errs = append(errs, invalid("domain %q is not a valid domain name", d))
		case t.domains[cd]:
			errs = append(errs, invalid("domain %s listed twice", cd))
		default:
			t.domains[cd] = true
		}
	}

	// taken records who claimed each address first, for duplicate messages.
	// what is "user", "alias" or "alias of user x".
	taken := make(map[string]string)
	claim := func(addr, what string) bool {
		prev, dup := taken[addr]
		switch {
		case dup && what == "user" && prev == "user":
			errs = append(errs, invalid("duplicate user %s", addr))
		case dup:
			errs = append(errs, invalid("address %s (%s) is already in use (%s)", addr, what, prev))
		default:
			taken[addr] = what
			return true
		}
		return false
	}
	localAddress := func(raw, what string) (string, bool) {
		addr, ok := canonicalAddress(raw)
		if !ok {
			errs = append(errs, invalid("%s %q is not a valid address", what, raw))
			return "", false
		}
		if !t.domains[domainOf(addr)] {
			errs = append(errs, invalid("%s %s is not in a local domain", what, addr))
			return "", false
		}
		return addr, true
	}

	for _, u := range cfg.Users {
		addr, ok := localAddress(u.Address, "user")
		if !ok || !claim(addr, "user") {
			continue
		}
		t.owner[addr] = addr // even if invalid below: aliases to them are not also "nowhere"
		e, err := newUserEntry(addr, u)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		t.users[addr] = e
		for _, raw := range u.Aliases {
			a, ok := localAddress(raw, "user "+addr+": alias")
			if !ok || !claim(a, "alias of user "+addr) {
				continue
			}
			e.user.Aliases = append(e.user.Aliases, a)
			t.owner[a] = addr
		}
	}

	// Aliases and lists, in key order so errors come out the same each time.
	aliases := make(map[string][]string) // canonical key → canonical targets
	for _, raw := range slices.Sorted(maps.Keys(cfg.Aliases)) {
		key, ok := aliasKey(strings.TrimSpace(raw), t.domains, &errs)
		if !ok || !claim(key, "alias") {
			continue
		}
		targets := cfg.Aliases[raw]
		if len(targets) == 0 {
			errs = append(errs, invalid("alias %s has no targets", key))
			continue
		}
		var ct []string
		for _, tg := range targets {
			c, ok := canonicalAddress(strings.TrimSpace(tg))
			if !ok {
				errs = append(errs, invalid("alias %s points to an invalid address %q", key, tg))
				continue
			}
			ct = append(ct, c)
		}
		aliases[key] = ct
	}
	for _, key := range slices.Sorted(maps.Keys(aliases)) {
		owners, err := resolveAlias(key, aliases, t.owner)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		t.rcpt[key] = owners
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	for key, owners := range t.rcpt {
		t.rcpt[key] = t.enabled(owners)
	}
	for addr, user := range t.owner {
		t.rcpt[addr] = t.enabled([]string{user})
	}

	t.sorted = make([]User, 0, len(t.users))
	for _, e := range t.users {
		t.sorted = append(t.sorted, e.user)
	}
	slices.SortFunc(t.sorted, func(a, b User) int { return strings.Compare(a.Address, b.Address) })
	t.dummy = dummyFor(t.sorted, t.users)
	t.dummyCRAM = cramStateOf(string(randomBytes(16)))
	return t, nil
}

// aliasKey canonicalises an alias key: a local address or "@domain".
func aliasKey(raw string, domains map[string]bool, errs *[]error) (string, bool) {
	if d, ok := strings.CutPrefix(raw, "@"); ok {
		cd, ok := canonicalDomain(d)
		if !ok || !domains[cd] {
			*errs = append(*errs, invalid("catch-all %q is not @ followed by a local domain", raw))
			return "", false
		}
		return "@" + cd, true
	}
	key, ok := canonicalAddress(raw)
	if !ok {
		*errs = append(*errs, invalid("alias %q is not a valid address", raw))
		return "", false
	}
	if !domains[domainOf(key)] {
		*errs = append(*errs, invalid("alias %s is not in a local domain", key))
		return "", false
	}
	return key, true
}

// resolveAlias maps an alias's targets to users. A target may be a user's
// address or alias, or another alias whose targets are all users: aliases
// nest one level, which keeps mail.ini readable and rules out loops.
func resolveAlias(key string, aliases map[string][]string, owner map[string]string) ([]string, error) {
	var users []string
	for _, tg := range aliases[key] {
		if u, ok := owner[tg]; ok {
			users = append(users, u)
			continue
		}
		inner, ok := aliases[tg]
		if !ok {
			return nil, invalid("alias %s points nowhere: %s", key, tg)
		}
		if tg == key {
			return nil, invalid("alias %s points to itself", key)
		}
		for _, t2 := range inner {
			if u, ok := owner[t2]; ok {
				users = append(users, u)
				continue
			}
			if t2 == key {
				return nil, invalid("alias loop: %s → %s → %s", key, tg, key)
			}
			if _, isAlias := aliases[t2]; isAlias {
				return nil, invalid("alias %s points to %s, which points to alias %s: aliases nest only one level", key, tg, t2)
			}
			return nil, invalid("alias %s points to %s, which points nowhere: %s", key, tg, t2)
		}
	}
	slices.Sort(users)
	return slices.Compact(users), nil
}

// enabled filters a sorted user list down to enabled users.
func (t *table) enabled(users []string) []string {
	out := make([]string, 0, len(users))
	for _, u := range users {
		if !t.users[u].user.Disabled {
			out = append(out, u)
		}
	}
	return out
}

func newUserEntry(addr string, u User) (*userEntry, error) {
	e := &userEntry{user: u}
	e.user.Address = addr
	e.user.Aliases = nil // refilled with canonical forms by the caller
	if u.Password != "" {
		h, err := parsePassword(u.Password)
		if err != nil {
			return nil, invalid("user %s: password: %v", addr, err)
		}
		e.hash = h
		if h.scheme == SchemePlain {
			st := cramStateOf(string(h.plain))
			e.cram = &st
		}
	}
	if u.CRAMMD5 != "" {
		st, err := parseCRAMSecret(u.CRAMMD5)
		if err != nil {
			return nil, invalid("user %s: %v", addr, err)
		}
		e.cram = &st
	}
	if u.Quota < 0 {
		return nil, invalid("user %s: negative quota %d", addr, u.Quota)
	}
	return e, nil
}

// dummyFor picks the most common scheme and cost among users and returns a
// hash of that kind that nothing matches, for logins of unknown users.
func dummyFor(sorted []User, users map[string]*userEntry) *passwordHash {
	count := make(map[string]int)
	var best *passwordHash
	for _, u := range sorted { // sorted: ties break the same way every time
		h := users[u.Address].hash
		if h == nil {
			continue
		}
		k := h.scheme + " " + h.cost
		count[k]++
		if best == nil || count[k] > count[best.scheme+" "+best.cost] {
			best = h
		}
	}
	if best == nil {
		return &passwordHash{scheme: SchemePlain, plain: randomBytes(16)}
	}
	return best.dummy()
}
