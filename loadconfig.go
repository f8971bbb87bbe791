package mailsuite

import (
	"bytes"
	"fmt"
	"net"
	"net/mail"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gopkg.in/ini.v1"

	"github.com/mailsuite/mailsuite/accounts"
)

// LoadConfig reads, parses and validates the mail.ini at path. Every error
// names the file, and the line, section and key where it can.
func LoadConfig(path string) (*Config, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	data, err := os.ReadFile(abs)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return ParseConfig(abs, data)
}

// ParseConfig is LoadConfig on bytes already read; path is used for
// messages and to resolve relative paths.
func ParseConfig(path string, data []byte) (*Config, error) {
	f, err := ini.LoadSources(ini.LoadOptions{
		AllowNonUniqueSections:   true, // so duplicate [user X] sections are seen, not merged
		AllowShadows:             true, // so duplicate keys are seen
		SpaceBeforeInlineComment: true, // "pass#word" is a value; " ; note" is a comment
		KeyValueDelimiters:       "=",  // ":" may appear in addresses and listen keys
	}, data)
	if err != nil {
		return nil, &configError{file: path, msg: strings.TrimPrefix(err.Error(), "unclosed section: ")}
	}
	c := defaultConfig()
	c.Path = path
	p := &parser{c: c, file: path, lines: newLineIndex(data)}
	for _, sec := range f.Sections() {
		p.section(sec)
	}
	if p.err == nil {
		p.validate()
	}
	if p.err != nil {
		return nil, p.err
	}
	return c, nil
}

type parser struct {
	c     *Config
	file  string
	lines lineIndex
	err   error
	users map[string]bool
	seen  map[string]int // section name → count, for listener sections
}

func (p *parser) fail(section, key, format string, args ...any) {
	if p.err != nil {
		return // report the first problem only: the rest may follow from it
	}
	p.err = &configError{file: p.file, line: p.lines.find(section, key), section: section, key: key, msg: fmt.Sprintf(format, args...)}
}

// keySetter applies one key's value.
type keySetter func(v string) error

func (p *parser) section(sec *ini.Section) {
	name := sec.Name()
	if p.seen == nil {
		p.seen = map[string]int{}
	}
	if name == ini.DefaultSection {
		for _, k := range sec.Keys() {
			p.fail("", k.Name(), "key outside any section")
		}
		return
	}
	if strings.HasPrefix(name, "user ") {
		p.user(sec)
		return
	}
	if p.seen[name]++; p.seen[name] > 1 {
		p.fail(name, "", "section appears more than once")
		return
	}
	if name == "aliases" {
		p.aliases(sec)
		return
	}
	keys, ok := p.sectionKeys(name)
	if !ok {
		p.fail(name, "", "unknown section (known: server, tls, limits, smtp, submission, submissions, pop3, pop3s, imap, imaps, relay, log, aliases, user ADDRESS)")
		return
	}
	p.applyKeys(name, sec, keys)
}

func (p *parser) applyKeys(name string, sec *ini.Section, keys map[string]keySetter) {
	for _, k := range sec.Keys() {
		set, ok := keys[k.Name()]
		if !ok {
			p.fail(name, k.Name(), "unknown key")
			return
		}
		if len(k.ValueWithShadows()) > 1 {
			p.fail(name, k.Name(), "key set more than once")
			return
		}
		if err := set(strings.TrimSpace(k.Value())); err != nil {
			p.fail(name, k.Name(), "%v", err)
			return
		}
	}
}

func (p *parser) sectionKeys(name string) (map[string]keySetter, bool) {
	c := p.c
	switch name {
	case "server":
		return map[string]keySetter{
			"hostname":                   str(&c.Server.Hostname),
			"domains":                    list(&c.Server.Domains),
			"data_dir":                   str(&c.Server.DataDir),
			"plaintext_auth_on_loopback": boolean(&c.Server.PlaintextAuthOnLoopback),
			"shutdown_grace":             duration(&c.Server.ShutdownGrace),
		}, true
	case "tls":
		return map[string]keySetter{"cert_file": str(&c.TLS.CertFile), "key_file": str(&c.TLS.KeyFile)}, true
	case "limits":
		l := &c.Limits
		return map[string]keySetter{
			"max_message_size":       size(&l.MaxMessageSize),
			"max_recipients":         integer(&l.MaxRecipients),
			"max_line_length":        integer(&l.MaxLineLength),
			"max_connections":        integer(&l.MaxConnections),
			"max_connections_per_ip": integer(&l.MaxConnectionsPerIP),
			"command_timeout":        duration(&l.CommandTimeout),
			"data_timeout":           duration(&l.DataTimeout),
			"pop3_idle_timeout":      duration(&l.POP3IdleTimeout),
			"imap_idle_timeout":      duration(&l.IMAPIdleTimeout),
			"auth_free_failures":     integer(&l.AuthFreeFailures),
			"auth_lockout_failures":  integer(&l.AuthLockoutFailures),
			"auth_lockout_window":    duration(&l.AuthLockoutWindow),
			"default_quota":          size(&l.DefaultQuota),
		}, true
	case "relay":
		r := &c.Relay
		return map[string]keySetter{
			"smarthost":          str(&r.Smarthost),
			"smarthost_user":     str(&r.SmarthostUser),
			"smarthost_password": str(&r.SmarthostPassword),
			"smarthost_tls":      tlsMode(&r.SmarthostTLS),
			"dns_server":         str(&r.DNSServer),
			"mx_port":            integer(&r.MXPort),
			"max_age":            duration(&r.MaxAge),
			"require_tls":        boolean(&r.RequireTLS),
			"workers":            integer(&r.Workers),
			"delay_warning":      duration(&r.DelayWarning),
			"dkim_selector":      str(&r.DKIMSelector),
		}, true
	case "log":
		return map[string]keySetter{
			"level":      oneOf(&c.Log.Level, "debug", "info", "warn", "error"),
			"format":     oneOf(&c.Log.Format, "text", "json"),
			"transcript": str(&c.Log.Transcript),
		}, true
	}
	for _, l := range c.listeners() {
		if l.Name != name {
			continue
		}
		keys := map[string]keySetter{"listen": str(&l.L.Listen), "tls": tlsMode(&l.L.TLS)}
		switch {
		case strings.HasPrefix(name, "s"): // smtp, submission, submissions
			keys["banner"] = str(&l.L.Banner)
			if name == "smtp" {
				keys["trusted_networks"] = prefixes(&l.L.TrustedNetworks)
			}
		case strings.HasPrefix(name, "pop3"):
			keys["mark_seen_on_retr"] = boolean(&l.L.MarkSeenOnRetr)
		}
		return keys, true
	}
	return nil, false
}

func (p *parser) user(sec *ini.Section) {
	name := sec.Name()
	addr := strings.TrimSpace(strings.TrimPrefix(name, "user "))
	if !validAddress(addr) {
		p.fail(name, "", "%q is not an email address", addr)
		return
	}
	if p.users == nil {
		p.users = map[string]bool{}
	}
	if lower := strings.ToLower(addr); p.users[lower] {
		p.fail(name, "", "duplicate user %s", addr)
		return
	} else {
		p.users[lower] = true
	}
	u := accounts.User{Address: addr}
	p.applyKeys(name, sec, map[string]keySetter{
		"password": str(&u.Password),
		"cram_md5": str(&u.CRAMMD5),
		"aliases":  list(&u.Aliases),
		"quota":    size(&u.Quota),
		"disabled": boolean(&u.Disabled),
	})
	if p.err != nil {
		return
	}
	if u.Password == "" {
		p.fail(name, "password", "missing: set one with `mailsuite user passwd %s`", addr)
		return
	}
	if !strings.HasPrefix(u.Password, "{") || strings.HasPrefix(u.Password, "{PLAIN}") {
		p.c.PlaintextPasswords = append(p.c.PlaintextPasswords, addr)
	}
	p.c.Users = append(p.c.Users, u)
}

func (p *parser) aliases(sec *ini.Section) {
	for _, k := range sec.Keys() {
		addr := k.Name()
		if !strings.HasPrefix(addr, "@") && !validAddress(addr) {
			p.fail("aliases", addr, "not an email address or @domain catch-all")
			return
		}
		if len(k.ValueWithShadows()) > 1 {
			p.fail("aliases", addr, "alias defined more than once")
			return
		}
		var targets []string
		if err := list(&targets)(k.Value()); err != nil || len(targets) == 0 {
			p.fail("aliases", addr, "needs one or more target addresses")
			return
		}
		p.c.Aliases[addr] = targets
	}
}

// validate checks what single keys cannot: cross-key rules and the account
// list as a whole (through accounts' own validation).
func (p *parser) validate() {
	c := p.c
	if len(c.Server.Domains) == 0 {
		p.fail("server", "domains", "at least one local domain is required")
		return
	}
	c.Server.DataDir = c.resolvePath(c.Server.DataDir)
	c.TLS.CertFile, c.TLS.KeyFile = c.resolvePath(c.TLS.CertFile), c.resolvePath(c.TLS.KeyFile)
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		p.fail("tls", "cert_file", "cert_file and key_file go together")
		return
	}
	if c.Log.Transcript != "" {
		c.Log.Transcript = c.resolvePath(c.Log.Transcript)
	}
	addrs := map[string]string{}
	for _, l := range c.listeners() {
		if l.L.Listen == "" {
			continue
		}
		host, port, err := net.SplitHostPort(l.L.Listen)
		if err != nil || port == "" {
			p.fail(l.Name, "listen", "want host:port, got %q", l.L.Listen)
			return
		}
		if host != "" && net.ParseIP(host) == nil && host != "localhost" {
			p.fail(l.Name, "listen", "host must be an IP address or localhost, got %q", host)
			return
		}
		if other, dup := addrs[l.L.Listen]; dup && !strings.HasSuffix(l.L.Listen, ":0") {
			p.fail(l.Name, "listen", "%s is already used by [%s]", l.L.Listen, other)
			return
		}
		addrs[l.L.Listen] = l.Name
	}
	if c.Relay.Smarthost != "" {
		host, _, err := net.SplitHostPort(c.Relay.Smarthost)
		if err != nil {
			p.fail("relay", "smarthost", "want host:port, got %q", c.Relay.Smarthost)
			return
		}
		ip := net.ParseIP(host)
		loopback := host == "localhost" || ip != nil && ip.IsLoopback()
		if c.Relay.SmarthostUser != "" && c.Relay.SmarthostTLS == TLSNone && !loopback {
			p.fail("relay", "smarthost_tls", "none would send smarthost_password in clear to %s; use starttls or implicit", host)
			return
		}
	}
	if _, err := accounts.New(c.AccountsConfig()); err != nil {
		msg := strings.TrimPrefix(strings.TrimPrefix(err.Error(), "accounts: "), "invalid configuration: ")
		section, key, line := p.lines.locateAccountError(msg)
		p.err = &configError{file: p.file, line: line, section: section, key: key, msg: msg}
	}
}

// ---- value parsers ----

func str(dst *string) keySetter {
	return func(v string) error { *dst = v; return nil }
}

func list(dst *[]string) keySetter {
	return func(v string) error {
		*dst = nil
		for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
			*dst = append(*dst, f)
		}
		return nil
	}
}

func boolean(dst *bool) keySetter {
	return func(v string) error {
		switch strings.ToLower(v) {
		case "true", "yes", "on", "1":
			*dst = true
		case "false", "no", "off", "0":
			*dst = false
		default:
			return fmt.Errorf("want true or false, got %q", v)
		}
		return nil
	}
}

func integer(dst *int) keySetter {
	return func(v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return fmt.Errorf("want a whole number ≥ 0, got %q", v)
		}
		*dst = n
		return nil
	}
}

func duration(dst *time.Duration) keySetter {
	return func(v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return fmt.Errorf("want a duration such as 30s, 5m or 2h, got %q", v)
		}
		*dst = d
		return nil
	}
}

// size parses 1024, 10K, 50M, 2G (powers of 1024); 0 means unlimited.
func size(dst *int64) keySetter {
	return func(v string) error {
		mult := int64(1)
		s := strings.ToUpper(strings.TrimSuffix(strings.ToUpper(v), "B"))
		switch {
		case strings.HasSuffix(s, "K"):
			mult, s = 1<<10, s[:len(s)-1]
		case strings.HasSuffix(s, "M"):
			mult, s = 1<<20, s[:len(s)-1]
		case strings.HasSuffix(s, "G"):
			mult, s = 1<<30, s[:len(s)-1]
		}
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil || n < 0 || n > (1<<62)/mult {
			return fmt.Errorf("want a size such as 512K, 50M or 2G, got %q", v)
		}
		*dst = n * mult
		return nil
	}
}

func oneOf(dst *string, allowed ...string) keySetter {
	return func(v string) error {
		for _, a := range allowed {
			if strings.EqualFold(v, a) {
				*dst = a
				return nil
			}
		}
		return fmt.Errorf("want one of %s, got %q", strings.Join(allowed, ", "), v)
	}
}

func tlsMode(dst *TLSMode) keySetter {
	return func(v string) error {
		switch m := TLSMode(strings.ToLower(v)); m {
		case TLSNone, TLSOptional, TLSRequired, TLSImplicit:
			*dst = m
			return nil
		}
		return fmt.Errorf("want none, starttls, required or implicit, got %q", v)
	}
}

func prefixes(dst *[]netip.Prefix) keySetter {
	return func(v string) error {
		var names []string
		list(&names)(v)
		*dst = nil
		for _, n := range names {
			pfx, err := netip.ParsePrefix(n)
			if err != nil {
				addr, err2 := netip.ParseAddr(n)
				if err2 != nil {
					return fmt.Errorf("want IP addresses or CIDR prefixes, got %q", n)
				}
				pfx = netip.PrefixFrom(addr, addr.BitLen())
			}
			*dst = append(*dst, pfx.Masked())
		}
		return nil
	}
}

func validAddress(s string) bool {
	a, err := mail.ParseAddress(s)
	return err == nil && a.Address == s && a.Name == "" && strings.Count(s, "@") == 1 && !strings.HasPrefix(s, "\"")
}

// ---- line numbers for messages ----

// lineIndex finds where a section or key stands in the raw file, since the
// ini library does not keep positions.
type lineIndex [][]byte

func newLineIndex(data []byte) lineIndex { return bytes.Split(data, []byte("\n")) }

// find returns the line of key in section, or of the section's header when
// the key is absent (a missing key is reported where it belongs), or 0. With
// several sections of the same name it reports the last, as that is the one
// that repeats.
func (li lineIndex) find(section, key string) int {
	in := section == ""
	header, keyLine := 0, 0
	for i, raw := range li {
		line := strings.TrimSpace(string(raw))
		if strings.HasPrefix(line, "[") {
			in = strings.TrimSpace(strings.Trim(line, "[]")) == section
			if in {
				header, keyLine = i+1, 0
			}
			continue
		}
		if in && key != "" && keyLine == 0 {
			if k, _, ok := strings.Cut(line, "="); ok && strings.TrimSpace(k) == key {
				keyLine = i + 1
			}
		}
	}
	if keyLine > 0 {
		return keyLine
	}
	return header
}

// locateAccountError finds where the address an accounts error names is
// defined: an [aliases] key or a [user ADDRESS] section.
func (li lineIndex) locateAccountError(msg string) (section, key string, line int) {
	for _, word := range strings.Fields(msg) {
		addr := strings.Trim(word, ":,;\"'()")
		if !strings.Contains(addr, "@") {
			continue
		}
		if n := li.find("aliases", addr); n > 0 && n != li.find("aliases", "") {
			return "aliases", addr, n
		}
		if n := li.find("user "+addr, ""); n > 0 {
			return "user " + addr, "", n
		}
	}
	return "", "", 0
}
