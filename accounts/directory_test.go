package accounts

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testConfig is a small office: two domains, a list, an alias to an alias,
// a catch-all on one domain, a disabled user and a user with aliases.
func testConfig(t testing.TB) Config {
	return Config{
		Domains: []string{"example.com", "Example.ORG"},
		Users: []User{
			{Address: "Bob@Example.com", Password: cheapHash(t, "bobpw"), Aliases: []string{"robert@example.com", "bob@example.org"}},
			{Address: "amy@example.com", Password: cheapHash(t, "amypw"), CRAMMD5: CRAMMD5Secret("amypw")},
			{Address: "carl@example.com", Password: "{PLAIN}carlpw"},
			{Address: "dora@example.com", Password: cheapHash(t, "dorapw"), Disabled: true},
			{Address: "bob+news@example.com", Password: cheapHash(t, "newspw")},
			{Address: "eve@example.org", Password: "evepw"},
		},
		Aliases: map[string][]string{
			"sales@example.com":      {"amy@example.com", "Bob@example.com", "robert@example.com"},
			"info@example.com":       {"sales@example.com", "carl@example.com"},
			"closed@example.com":     {"dora@example.com"},
			"mixed@example.com":      {"dora@example.com", "carl@example.com"},
			"@example.org":           {"eve@example.org"},
			"postmaster@example.org": {"bob@example.com"},
		},
	}
}

func newTestDir(t testing.TB) *Directory {
	t.Helper()
	d, err := New(testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestResolve(t *testing.T) {
	d := newTestDir(t)
	cases := []struct {
		addr string
		want []string
		err  error
	}{
		{"bob@example.com", []string{"bob@example.com"}, nil},
		{"BOB@EXAMPLE.COM", []string{"bob@example.com"}, nil},
		{"robert@Example.com", []string{"bob@example.com"}, nil},
		{"bob@example.org", []string{"bob@example.com"}, nil},
		{"bob+shop@example.com", []string{"bob@example.com"}, nil},
		{"robert+x@example.com", []string{"bob@example.com"}, nil},
		{"bob+news@example.com", []string{"bob+news@example.com"}, nil}, // a user of its own
		{"sales@example.com", []string{"amy@example.com", "bob@example.com"}, nil},
		{"sales+q3@example.com", []string{"amy@example.com", "bob@example.com"}, nil},
		{"info@example.com", []string{"amy@example.com", "bob@example.com", "carl@example.com"}, nil},
		{"mixed@example.com", []string{"carl@example.com"}, nil},
		{"postmaster@example.org", []string{"bob@example.com"}, nil},
		{"anything@example.org", []string{"eve@example.org"}, nil},
		{"anything+tag@EXAMPLE.org", []string{"eve@example.org"}, nil},
		{"eve@example.org", []string{"eve@example.org"}, nil},
		{"dora@example.com", nil, ErrNoSuchUser},
		{"closed@example.com", nil, ErrNoSuchUser},
		{"nobody@example.com", nil, ErrNoSuchUser},
		{"+bob@example.com", nil, ErrNoSuchUser},
		{`"bob"@example.com`, nil, ErrNoSuchUser},
		{"bob", nil, ErrNoSuchUser},
		{"", nil, ErrNoSuchUser},
		{"bob@example.com\r\nRCPT TO:<x@y>", nil, ErrNoSuchUser},
		{"bob@example.net", nil, ErrNotLocal},
	}
	for _, c := range cases {
		got, err := d.Resolve(c.addr)
		if c.err != nil {
			if !errors.Is(err, c.err) {
				t.Errorf("Resolve(%q) = %v, %v; want %v", c.addr, got, err, c.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("Resolve(%q) = %v, %v; want %v", c.addr, got, err, c.want)
		}
	}
	// The caller owns the result.
	got, _ := d.Resolve("sales@example.com")
	got[0] = "mallory@example.com"
	if again, _ := d.Resolve("sales@example.com"); again[0] != "amy@example.com" {
		t.Fatal("Resolve returned the directory's own slice")
	}
}

func TestAuthenticate(t *testing.T) {
	d := newTestDir(t)
	ctx := context.Background()
	good := []struct{ user, pw, want string }{
		{"bob@example.com", "bobpw", "bob@example.com"},
		{"BOB@example.COM", "bobpw", "bob@example.com"},
		{"carl@example.com", "carlpw", "carl@example.com"},
		{"eve@example.org", "evepw", "eve@example.org"},
		{"bob+news@example.com", "newspw", "bob+news@example.com"},
	}
	for _, c := range good {
		if got, err := d.Authenticate(ctx, c.user, c.pw); err != nil || got != c.want {
			t.Errorf("Authenticate(%q) = %q, %v; want %q", c.user, got, err, c.want)
		}
	}
	bad := []struct{ user, pw string }{
		{"bob@example.com", "BOBPW"},
		{"bob@example.com", ""},
		{"robert@example.com", "bobpw"}, // aliases are not logins
		{"bob+x@example.com", "bobpw"},  // nor are tags
		{"dora@example.com", "dorapw"},  // disabled
		{"nobody@example.com", "bobpw"}, // unknown
		{"bob", "bobpw"},                // not an address
		{"sales@example.com", "bobpw"},  // a list
	}
	for _, c := range bad {
		if got, err := d.Authenticate(ctx, c.user, c.pw); !errors.Is(err, ErrAuthFailed) {
			t.Errorf("Authenticate(%q, %q) = %q, %v; want ErrAuthFailed", c.user, c.pw, got, err)
		}
	}
}

// An unknown user must cost the same hashing work as a real one: the same
// scheme with the same parameters, exactly once. Counted through the
// OnHashWork knob rather than timed.
func TestAuthenticateSameWorkForUnknownUsers(t *testing.T) {
	bc, _ := HashPasswordWith("pw", HashOptions{Scheme: SchemeBcrypt, BcryptCost: 5})
	for _, tc := range []struct{ name, stored string }{
		{"argon2id", cheapHash(t, "pw")},
		{"bcrypt", bc},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var work []string
			cfg := Config{
				Domains: []string{"x.org"},
				Users: []User{
					{Address: "a@x.org", Password: tc.stored},
					{Address: "b@x.org", Password: tc.stored},
					{Address: "p@x.org", Password: "{PLAIN}pw"}, // a minority scheme: not the dummy's
					{Address: "off@x.org", Password: tc.stored, Disabled: true},
				},
				OnHashWork: func(scheme, cost string) {
					mu.Lock()
					work = append(work, scheme+" "+cost)
					mu.Unlock()
				},
			}
			d, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			workFor := func(user, pw string) []string {
				mu.Lock()
				work = nil
				mu.Unlock()
				_, err := d.Authenticate(context.Background(), user, pw)
				if !errors.Is(err, ErrAuthFailed) {
					t.Fatalf("Authenticate(%q) = %v", user, err)
				}
				mu.Lock()
				defer mu.Unlock()
				return slices.Clone(work)
			}
			known := workFor("a@x.org", "wrong")
			if len(known) != 1 {
				t.Fatalf("known user: %d hash computations, want 1", len(known))
			}
			for _, user := range []string{"nobody@x.org", "NOBODY@X.ORG", "not an address", "off@x.org"} {
				if got := workFor(user, "wrong"); !slices.Equal(got, known) {
					t.Errorf("%q cost %v, a known user costs %v", user, got, known)
				}
			}
		})
	}
}

func TestAuthenticateBoundsConcurrentHashing(t *testing.T) {
	const limit = 2
	var running, peak atomic.Int32
	cfg := testConfig(t)
	cfg.MaxConcurrentHashes = limit
	cfg.OnHashWork = func(string, string) {
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(5 * time.Millisecond) // hold the slot so others queue
		running.Add(-1)
	}
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Go(func() {
			_, _ = d.Authenticate(context.Background(), fmt.Sprintf("u%d@example.com", i), "x")
		})
	}
	wg.Wait()
	if p := peak.Load(); p > limit || p < 1 {
		t.Fatalf("peak concurrent hashing %d, limit %d", p, limit)
	}

	// A caller whose context ends while queued gives up with its error.
	block := make(chan struct{})
	cfg.MaxConcurrentHashes = 1
	cfg.OnHashWork = func(string, string) { <-block }
	d, _ = New(cfg)
	go func() { _, _ = d.Authenticate(context.Background(), "bob@example.com", "x") }()
	for deadline := time.Now().Add(5 * time.Second); len(d.hashes) == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			close(block)
			t.Fatal("the first login never took a hashing slot")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err = d.Authenticate(ctx, "bob@example.com", "bobpw")
	close(block)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("queued Authenticate = %v, want deadline exceeded", err)
	}
}

func TestVerifyCRAMMD5(t *testing.T) {
	d := newTestDir(t)
	const ch = "<1896.697170952@postoffice.reston.mci.net>"
	resp := func(pw string) string { st := cramStateOf(pw); return fmt.Sprintf("%x", st.digest(ch)) }
	if u, err := d.VerifyCRAMMD5("AMY@example.com", ch, resp("amypw")); err != nil || u != "amy@example.com" {
		t.Fatalf("amy with {CRAM-MD5} secret: %q, %v", u, err)
	}
	if u, err := d.VerifyCRAMMD5("carl@example.com", ch, resp("carlpw")); err != nil || u != "carl@example.com" {
		t.Fatalf("carl with plaintext password: %q, %v", u, err)
	}
	bad := []struct{ user, digest string }{
		{"amy@example.com", resp("wrong")},
		{"amy@example.com", "not hex"},
		{"amy@example.com", ""},
		{"bob@example.com", resp("bobpw")}, // argon2 only: CRAM-MD5 impossible
		{"dora@example.com", resp("dorapw")},
		{"nobody@example.com", resp("x")},
		{"", ""},
	}
	for _, c := range bad {
		if _, err := d.VerifyCRAMMD5(c.user, ch, c.digest); !errors.Is(err, ErrAuthFailed) {
			t.Errorf("VerifyCRAMMD5(%q, %q) = %v, want ErrAuthFailed", c.user, c.digest, err)
		}
	}
}

func TestCanSendAs(t *testing.T) {
	d := newTestDir(t)
	cases := []struct {
		user, addr string
		want       bool
	}{
		{"bob@example.com", "bob@example.com", true},
		{"bob@example.com", "BOB@EXAMPLE.COM", true},
		{"Bob@Example.com", "robert@example.com", true},
		{"bob@example.com", "bob@example.org", true},
		{"bob@example.com", "bob+shop@example.com", true},
		{"bob@example.com", "robert+x@example.com", true},
		{"bob@example.com", "bob+news@example.com", false}, // someone else's
		{"bob@example.com", "sales@example.com", false},    // a list, not an alias of bob
		{"bob@example.com", "amy@example.com", false},
		{"bob@example.com", "anything@example.org", false}, // catch-all delivers, does not authorise
		{"bob@example.com", "bob@elsewhere.net", false},
		{"bob@example.com", `"bob"@example.com`, false},
		{"dora@example.com", "dora@example.com", false},
		{"nobody@example.com", "nobody@example.com", false},
		{"bob+news@example.com", "bob+news@example.com", true},
	}
	for _, c := range cases {
		if got := d.CanSendAs(c.user, c.addr); got != c.want {
			t.Errorf("CanSendAs(%q, %q) = %v, want %v", c.user, c.addr, got, c.want)
		}
	}
}

func TestLookupUsersDomains(t *testing.T) {
	d := newTestDir(t)
	u, ok := d.Lookup("BOB@example.COM")
	if !ok || u.Address != "bob@example.com" || !slices.Equal(u.Aliases, []string{"robert@example.com", "bob@example.org"}) {
		t.Fatalf("Lookup = %+v, %v", u, ok)
	}
	u.Aliases[0] = "changed@example.com"
	if u2, _ := d.Lookup("bob@example.com"); u2.Aliases[0] != "robert@example.com" {
		t.Fatal("Lookup returned the directory's own slice")
	}
	if _, ok := d.Lookup("robert@example.com"); ok {
		t.Fatal("Lookup found an alias")
	}
	if u, ok := d.Lookup("dora@example.com"); !ok || !u.Disabled {
		t.Fatal("Lookup does not report a disabled user")
	}
	var addrs []string
	for _, u := range d.Users() {
		addrs = append(addrs, u.Address)
	}
	want := []string{"amy@example.com", "bob+news@example.com", "bob@example.com", "carl@example.com", "dora@example.com", "eve@example.org"}
	if !slices.Equal(addrs, want) {
		t.Fatalf("Users = %v, want %v", addrs, want)
	}
	if got := d.PlaintextUsers(); !slices.Equal(got, []string{"carl@example.com", "eve@example.org"}) {
		t.Fatalf("PlaintextUsers = %v", got)
	}
	if got := d.Domains(); !slices.Equal(got, []string{"example.com", "example.org"}) {
		t.Fatalf("Domains = %v", got)
	}
	for dom, want := range map[string]bool{"example.com": true, "EXAMPLE.org": true, "example.net": false, "": false, "example.com.": false} {
		if got := d.IsLocalDomain(dom); got != want {
			t.Errorf("IsLocalDomain(%q) = %v", dom, got)
		}
	}
}

func TestUpdate(t *testing.T) {
	d := newTestDir(t)
	var mu sync.Mutex
	var calls [][]string
	cancel := d.Subscribe(func(gone []string) {
		// Subscribers may call back in: no lock is held.
		if _, ok := d.Lookup("amy@example.com"); ok {
			t.Error("subscriber sees the old list")
		}
		mu.Lock()
		calls = append(calls, gone)
		mu.Unlock()
	})

	// An invalid edit keeps the old list.
	bad := testConfig(t)
	bad.Aliases = map[string][]string{"x@example.com": {"ghost@example.com"}}
	if err := d.Update(bad); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Update(bad) = %v", err)
	}
	if _, err := d.Resolve("sales@example.com"); err != nil {
		t.Fatalf("old list lost after a bad update: %v", err)
	}

	// Remove amy, disable carl, enable dora, add fay.
	next := testConfig(t)
	next.Users = slices.DeleteFunc(next.Users, func(u User) bool { return u.Address == "amy@example.com" })
	for i := range next.Users {
		switch next.Users[i].Address {
		case "carl@example.com":
			next.Users[i].Disabled = true
		case "dora@example.com":
			next.Users[i].Disabled = false
		}
	}
	next.Users = append(next.Users, User{Address: "fay@example.com", Password: "{PLAIN}faypw"})
	next.Aliases = map[string][]string{"sales@example.com": {"fay@example.com"}}
	if err := d.Update(next); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	got := calls
	mu.Unlock()
	if len(got) != 1 || !slices.Equal(got[0], []string{"amy@example.com", "carl@example.com"}) {
		t.Fatalf("subscriber calls = %v", got)
	}
	if r, err := d.Resolve("sales@example.com"); err != nil || !slices.Equal(r, []string{"fay@example.com"}) {
		t.Fatalf("after update Resolve(sales) = %v, %v", r, err)
	}
	if _, err := d.Authenticate(context.Background(), "dora@example.com", "dorapw"); err != nil {
		t.Fatalf("re-enabled user cannot log in: %v", err)
	}

	// An update that removes nobody notifies nobody; a cancelled
	// subscription is not called.
	if err := d.Update(next); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := d.Update(testConfig(t)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(calls) != 1 {
		t.Fatalf("subscriber called %d times, want 1", len(calls))
	}
}

// Readers and updaters at once: run with -race.
func TestConcurrentUse(t *testing.T) {
	d := newTestDir(t)
	cfgA, cfgB := testConfig(t), testConfig(t)
	cfgB.Aliases = map[string][]string{"sales@example.com": {"carl@example.com"}}
	d.Subscribe(func([]string) {})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if r, err := d.Resolve("sales@example.com"); err != nil || len(r) == 0 {
					t.Errorf("Resolve during updates: %v, %v", r, err)
					return
				}
				d.CanSendAs("bob@example.com", "robert@example.com")
				d.Lookup("amy@example.com")
				_, _ = d.Authenticate(context.Background(), "carl@example.com", "carlpw")
			}
		})
	}
	for i := range 50 {
		cfg := cfgA
		if i%2 == 1 {
			cfg = cfgB
		}
		if err := d.Update(cfg); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
}
