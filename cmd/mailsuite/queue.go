package main

// mailsuite queue: inspect and steer the relay queue, also while the
// server runs (relay serialises with it through per-message lock files and
// wakes it through <data>/queue/.wake).

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/mailsuite/mailsuite"
	"github.com/mailsuite/mailsuite/relay"
)

const queueUsage = `usage: mailsuite queue COMMAND [-config FILE | -data DIR]

  list          queued messages with their recipients' state
  show ID       one message: envelope, per-recipient state, header
  retry ID      try ID now
  flush         try every queued message now
  delete ID     drop ID silently (no bounce)
  bounce ID     give up on ID's pending recipients and bounce to the sender
`

// relaySettings is what the admin commands need from mail.ini.
type relaySettings struct {
	dataDir  string
	hostname string
	domains  []string
	selector string
}

// loadRelaySettings reads -data DIR, or else the data dir of -config FILE.
func loadRelaySettings(cfgPath, dataDir string) (relaySettings, error) {
	if dataDir != "" {
		return relaySettings{dataDir: dataDir, selector: "mail"}, nil
	}
	cfg, err := mailsuite.LoadConfig(cfgPath)
	if err != nil {
		return relaySettings{}, err
	}
	return relaySettings{dataDir: cfg.Server.DataDir, hostname: cfg.Server.Hostname,
		domains: cfg.Server.Domains, selector: cfg.Relay.DKIMSelector}, nil
}

func runQueue(args []string, stdout, stderr io.Writer) int {
	fs, cfgPath := newFlags("queue", stderr)
	dataDir := fs.String("data", "", "data directory (instead of reading -config)")
	fs.Usage = func() { fmt.Fprint(stderr, queueUsage) }
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) == 0 {
		fmt.Fprint(stderr, queueUsage)
		return 2
	}
	cmd, pos := pos[0], pos[1:]
	wantArgs := map[string]int{"list": 0, "flush": 0, "show": 1, "retry": 1, "delete": 1, "bounce": 1}
	n, known := wantArgs[cmd]
	if !known || len(pos) != n {
		fmt.Fprint(stderr, queueUsage)
		return 2
	}
	st, err := loadRelaySettings(*cfgPath, *dataDir)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	q, err := relay.New(relay.Options{DataDir: st.dataDir, Hostname: st.hostname, LocalDomains: st.domains,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	switch cmd {
	case "list":
		list, err := q.List()
		if err != nil {
			return queueFail(stderr, "", err)
		}
		printQueue(stdout, list)
	case "show":
		info, err := q.Show(pos[0])
		if err != nil {
			return queueFail(stderr, pos[0], err)
		}
		printInfo(stdout, info)
	case "flush":
		n, err := q.Flush()
		if err != nil {
			return queueFail(stderr, "", err)
		}
		fmt.Fprintf(stdout, "%d message(s) scheduled for immediate delivery\n", n)
	default:
		op := map[string]func(string) error{"retry": q.Retry, "delete": q.Delete, "bounce": q.Bounce}[cmd]
		if err := op(pos[0]); err != nil {
			return queueFail(stderr, pos[0], err)
		}
		fmt.Fprintf(stdout, "%s: %s done\n", pos[0], cmd)
	}
	return 0
}

func queueFail(stderr io.Writer, id string, err error) int {
	switch {
	case errors.Is(err, relay.ErrNotFound):
		fmt.Fprintf(stderr, "mailsuite queue: %s: no such queued message\n", id)
	case errors.Is(err, relay.ErrBusy):
		fmt.Fprintf(stderr, "mailsuite queue: %s is being delivered right now; try again shortly\n", id)
	default:
		fmt.Fprintln(stderr, "mailsuite queue:", err)
	}
	return 1
}

func printQueue(w io.Writer, list []relay.Info) {
	if len(list) == 0 {
		fmt.Fprintln(w, "queue is empty")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSIZE\tQUEUED\tNEXT TRY\tTRIES\tFROM")
	for _, i := range list {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t<%s>\n", i.ID, i.Size, stamp(i.Created), stamp(i.Next), i.Attempts, i.From)
		for _, r := range i.Recipients {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t\t\t%s\n", r.Addr, r.State, r.Status, r.Diagnostic)
		}
	}
	tw.Flush()
	fmt.Fprintf(w, "%d message(s)\n", len(list))
}

func printInfo(w io.Writer, i relay.Info) {
	fmt.Fprintf(w, "ID:        %s\nFrom:      <%s>\nSize:      %d\nQueued:    %s\nAttempts:  %d\nLast try:  %s\nNext try:  %s\nBounces:   %d\n",
		i.ID, i.From, i.Size, stamp(i.Created), i.Attempts, stamp(i.LastAttempt), stamp(i.Next), i.Bounces)
	for _, r := range i.Recipients {
		fmt.Fprintf(w, "Recipient: %s\n  state %s, status %s, TLS %s, updated %s\n", r.Addr, r.State, dash(r.Status), dash(r.TLS), stamp(r.Updated))
		if r.RemoteMTA != "" || r.Diagnostic != "" {
			fmt.Fprintf(w, "  remote %s: %s\n", dash(r.RemoteMTA), r.Diagnostic)
		}
	}
	fmt.Fprintf(w, "\n%s", printable(strings.ReplaceAll(i.Header, "\r\n", "\n")))
}

// printable replaces control characters other than tab and newline (C0,
// DEL, C1) and invalid UTF-8 with '?': a queued message's header is
// anyone's text, and escape sequences in it must not drive the admin's
// terminal.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' {
			return r
		}
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == utf8.RuneError {
			return '?'
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
