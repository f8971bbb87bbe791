package main

// mailsuite check-store: verify the maildir tree and, with -repair, fix
// what is safe to fix. It may run beside the server: mailstore.Check takes
// the folder locks the store takes.

import (
	"fmt"
	"io"
	"log/slog"
	"path/filepath"

	"github.com/mailsuite/mailsuite"
	"github.com/mailsuite/mailsuite/mailstore"
)

const checkStoreUsage = `usage: mailsuite check-store [-config FILE] [-repair] [-user ADDRESS]

Verifies every user's maildir under <data_dir>/mail: dovecot-uidlist and
dovecot-keywords, file names, flags and sizes, old temp files, stale locks,
folder names. Prints one line per finding and a summary; exits 0 when no
problem remains, 1 otherwise. -repair fixes what is safe to fix (files that
need a UID get one from the store's own sync).
`

func runCheckStore(args []string, stdout, stderr io.Writer) int {
	fs, cfgPath := newFlags("check-store", stderr)
	repair := fs.Bool("repair", false, "repair what is safe to repair")
	user := fs.String("user", "", "check only this user's maildir")
	fs.Usage = func() { fmt.Fprint(stderr, checkStoreUsage) }
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) > 0 {
		fmt.Fprint(stderr, checkStoreUsage)
		return 2
	}
	cfg, err := mailsuite.LoadConfig(*cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	rep, err := mailstore.Check(mailstore.CheckOptions{
		Root: filepath.Join(cfg.Server.DataDir, "mail"), User: *user, Repair: *repair,
		Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	// Names on disk are anyone's bytes: keep them off the terminal's
	// control sequences.
	for _, f := range rep.Findings {
		fmt.Fprintln(stdout, printable(f.String()))
	}
	if err != nil {
		fmt.Fprintln(stderr, "mailsuite check-store:", printable(err.Error()))
		return 1
	}
	notes := len(rep.Findings) - rep.Problems() - rep.Repaired()
	fmt.Fprintf(stdout, "checked %d user(s), %d folder(s), %d message(s) (%d not yet seen by a session): %d problem(s), %d repaired, %d note(s)\n",
		rep.Users, rep.Folders, rep.Messages, rep.Pending, rep.Problems(), rep.Repaired(), notes)
	if rep.Problems() > 0 {
		if !*repair {
			fmt.Fprintln(stdout, "run with -repair to fix what is safe to fix")
		}
		return 1
	}
	return 0
}
