package mailsuite

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/mailsuite/mailsuite/accounts"
)

// configWatcher re-reads mail.ini when it changes and applies the account
// list (users, aliases, domains) to the running directory. It polls rather
// than using inotify because editors replace files in several ways (write in
// place, rename over, symlink swap) and a stat every half second catches all
// of them well inside the two-second promise.
type configWatcher struct {
	path     string
	interval time.Duration
	dir      *accounts.Directory
	log      *slog.Logger
	current  *Config
	last     []byte
	// applied is called after each successful reload (tests).
	applied func(*Config)
}

func (w *configWatcher) run(ctx context.Context) {
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.check()
		}
	}
}

func (w *configWatcher) check() {
	data, err := os.ReadFile(w.path)
	if err != nil {
		if !bytes.Equal(w.last, nil) {
			w.log.Error("config: cannot read; keeping the current accounts", "file", w.path, "err", err)
			w.last = nil
		}
		return
	}
	if bytes.Equal(data, w.last) {
		return
	}
	w.last = data
	cfg, err := ParseConfig(w.path, data)
	if err != nil {
		w.log.Error("config changed but is invalid; keeping the current accounts", "err", err)
		return
	}
	acfg := cfg.AccountsConfig()
	acfg.Logger = w.log
	if err := w.dir.Update(acfg); err != nil {
		w.log.Error("config changed but the accounts are invalid; keeping the current ones", "err", err)
		return
	}
	w.log.Info("config reloaded: accounts updated", "users", len(cfg.Users), "aliases", len(cfg.Aliases), "domains", cfg.Server.Domains)
	if changed := restartNeeded(w.current, cfg); len(changed) > 0 {
		w.log.Warn("config: these changes take effect only after a restart", "sections", changed)
	}
	w.current = cfg
	if w.applied != nil {
		w.applied(cfg)
	}
}

// restartNeeded names the sections whose changes a reload does not apply.
func restartNeeded(old, cur *Config) []string {
	var out []string
	if old.Server.Hostname != cur.Server.Hostname || old.Server.DataDir != cur.Server.DataDir ||
		old.Server.PlaintextAuthOnLoopback != cur.Server.PlaintextAuthOnLoopback {
		out = append(out, "server")
	}
	if old.TLS != cur.TLS {
		out = append(out, "tls")
	}
	if old.Limits != cur.Limits {
		out = append(out, "limits")
	}
	ol, cl := old.listeners(), cur.listeners()
	for i := range ol {
		if !sameListener(*ol[i].L, *cl[i].L) {
			out = append(out, ol[i].Name)
		}
	}
	if old.Relay != cur.Relay {
		out = append(out, "relay")
	}
	if old.Log != cur.Log {
		out = append(out, "log")
	}
	return out
}

func sameListener(a, b Listener) bool {
	if a.Listen != b.Listen || a.TLS != b.TLS || a.Banner != b.Banner || a.MarkSeenOnRetr != b.MarkSeenOnRetr ||
		len(a.TrustedNetworks) != len(b.TrustedNetworks) {
		return false
	}
	for i := range a.TrustedNetworks {
		if a.TrustedNetworks[i] != b.TrustedNetworks[i] {
			return false
		}
	}
	return true
}
