package accounts

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
)

// Directory is the live account list. All methods are safe for concurrent use.
//
// Invariants: the current table is immutable and replaced whole through an
// atomic pointer, so lookups take no lock; subscribers are called with no
// lock held, so they may call back into the Directory.
type Directory struct {
	cur    atomic.Pointer[table]
	logger *slog.Logger
	onHash func(scheme, cost string)
	hashes chan struct{} // semaphore bounding concurrent password hashing

	subMu   sync.Mutex
	subs    map[uint64]func(gone []string)
	nextSub uint64
}

// New validates cfg and returns a directory holding it.
func New(cfg Config) (*Directory, error) {
	t, err := buildTable(cfg)
	if err != nil {
		return nil, err
	}
	n := cfg.MaxConcurrentHashes
	if n <= 0 {
		n = 2 * runtime.GOMAXPROCS(0)
	}
	d := &Directory{
		logger: cfg.Logger,
		onHash: cfg.OnHashWork,
		hashes: make(chan struct{}, n),
		subs:   make(map[uint64]func([]string)),
	}
	if d.logger == nil {
		d.logger = slog.New(slog.DiscardHandler)
	}
	d.cur.Store(t)
	return d, nil
}

// Update validates cfg and, if valid, swaps it in atomically. If it is not
// valid the previous list stays in force and the error (wrapping ErrInvalid)
// says why. Subscribers are told which users vanished or were disabled.
func (d *Directory) Update(cfg Config) error {
	t, err := buildTable(cfg)
	if err != nil {
		return err
	}
	// Swap hands back exactly the table this one replaces, so concurrent
	// Updates each report the users that their own edit removed.
	old := d.cur.Swap(t)

	var gone []string
	for _, u := range old.sorted {
		if e, ok := t.users[u.Address]; !u.Disabled && (!ok || e.user.Disabled) {
			gone = append(gone, u.Address)
		}
	}
	d.logger.Info("accounts: list replaced", "users", len(t.sorted), "gone", gone)
	if len(gone) == 0 {
		return nil
	}
	d.subMu.Lock()
	fns := make([]func([]string), 0, len(d.subs))
	for _, fn := range d.subs {
		fns = append(fns, fn)
	}
	d.subMu.Unlock()
	for _, fn := range fns {
		fn(slices.Clone(gone))
	}
	return nil
}

// Authenticate checks a login name (the full address) and password. It takes
// the same time whether or not the user exists. It returns the canonical
// address of the user.
//
// Unknown users, users without a password and disabled users all cost one
// full verification (against a dummy hash of the most common scheme and
// cost) and all fail with ErrAuthFailed. If ctx ends while waiting for a
// hashing slot, the error wraps ctx.Err().
func (d *Directory) Authenticate(ctx context.Context, username, password string) (string, error) {
	t := d.cur.Load()
	addr, _ := canonicalAddress(username)
	e := t.users[addr]
	h := t.dummy
	if e != nil && e.hash != nil {
		h = e.hash
	}
	select {
	case d.hashes <- struct{}{}:
	case <-ctx.Done():
		return "", fmt.Errorf("accounts: authenticate: %w", ctx.Err())
	}
	ok := h.verify(password, d.onHash)
	<-d.hashes
	if !ok || e == nil || e.hash == nil || e.user.Disabled {
		return "", ErrAuthFailed
	}
	return addr, nil
}

// VerifyCRAMMD5 checks a CRAM-MD5 response (RFC 2195): digestHex is the
// lower-case hex HMAC-MD5 of challenge keyed by the password. It works for
// users with a {CRAM-MD5} secret or a plaintext password; for everyone else
// it fails, after the same work, with ErrAuthFailed.
func (d *Directory) VerifyCRAMMD5(username, challenge, digestHex string) (string, error) {
	t := d.cur.Load()
	addr, _ := canonicalAddress(username)
	e := t.users[addr]
	st := t.dummyCRAM
	if e != nil && e.cram != nil {
		st = *e.cram
	}
	if d.onHash != nil {
		d.onHash("CRAM-MD5", "")
	}
	ok := st.verify(challenge, digestHex)
	if !ok || e == nil || e.cram == nil || e.user.Disabled {
		if e != nil && e.cram == nil {
			// Worth knowing when a client insists on CRAM-MD5.
			d.logger.Debug("accounts: CRAM-MD5 impossible for user: no {CRAM-MD5} secret or plaintext password", "user", addr)
		}
		return "", ErrAuthFailed
	}
	return addr, nil
}

// Resolve maps a recipient address to the canonical addresses of the users
// who receive it (plus-addressing, aliases, lists, catch-all). It returns
// ErrNotLocal for foreign domains and ErrNoSuchUser for unknown local parts
// and disabled users.
//
// Order of lookup: the exact address; then without its +tag ("bob+news@"
// → "bob@", only when "bob+news@" is not itself known); then the domain's
// catch-all. The result is sorted, without duplicates, and the caller may
// keep it.
func (d *Directory) Resolve(address string) ([]string, error) {
	t := d.cur.Load()
	addr, ok := canonicalAddress(address)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNoSuchUser, address)
	}
	dom := domainOf(addr)
	if !t.domains[dom] {
		return nil, fmt.Errorf("%w: %s", ErrNotLocal, dom)
	}
	users, found := t.rcpt[addr]
	if !found {
		if base, tagged := stripTag(addr); tagged {
			users, found = t.rcpt[base]
		}
	}
	if !found {
		users, found = t.rcpt["@"+dom]
	}
	if !found || len(users) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrNoSuchUser, addr)
	}
	return slices.Clone(users), nil
}

// IsLocalDomain reports whether domain (any case) is served here.
func (d *Directory) IsLocalDomain(domain string) bool {
	cd, ok := canonicalDomain(domain)
	return ok && d.cur.Load().domains[cd]
}

// Domains returns the local domains, canonical (lower-case) and sorted.
func (d *Directory) Domains() []string {
	return slices.Sorted(maps.Keys(d.cur.Load().domains))
}

// CanSendAs reports whether the authenticated user may use address as the
// envelope sender or From: address (their own address or one of their aliases,
// with or without a +tag). A tag is stripped only when the tagged address is
// not itself someone's, as in Resolve.
func (d *Directory) CanSendAs(user, address string) bool {
	t := d.cur.Load()
	u, ok := canonicalAddress(user)
	if !ok {
		return false
	}
	if e := t.users[u]; e == nil || e.user.Disabled {
		return false
	}
	a, ok := canonicalAddress(address)
	if !ok {
		return false
	}
	if _, known := t.rcpt[a]; !known {
		if base, tagged := stripTag(a); tagged {
			a = base
		}
	}
	return t.owner[a] == u
}

// Lookup returns the user whose login is address.
func (d *Directory) Lookup(address string) (User, bool) {
	addr, ok := canonicalAddress(address)
	if !ok {
		return User{}, false
	}
	e := d.cur.Load().users[addr]
	if e == nil {
		return User{}, false
	}
	return cloneUser(e.user), true
}

// Users returns all users, sorted by address.
func (d *Directory) Users() []User {
	t := d.cur.Load()
	out := make([]User, len(t.sorted))
	for i, u := range t.sorted {
		out[i] = cloneUser(u)
	}
	return out
}

// PlaintextUsers returns the sorted addresses of users whose password is
// stored in the clear, so the wiring can warn about them at start.
func (d *Directory) PlaintextUsers() []string {
	var out []string
	for _, u := range d.cur.Load().sorted {
		if u.PlaintextPassword() {
			out = append(out, u.Address)
		}
	}
	return out
}

// Subscribe calls fn after every successful Update that removed or disabled
// users, with their addresses, so servers can end their sessions. fn runs
// on the updating goroutine with no lock held. The returned func cancels
// the subscription.
func (d *Directory) Subscribe(fn func(gone []string)) (cancel func()) {
	d.subMu.Lock()
	id := d.nextSub
	d.nextSub++
	d.subs[id] = fn
	d.subMu.Unlock()
	return func() {
		d.subMu.Lock()
		delete(d.subs, id)
		d.subMu.Unlock()
	}
}

// cloneUser copies u so callers cannot change the directory's slices.
func cloneUser(u User) User {
	u.Aliases = slices.Clone(u.Aliases)
	return u
}
