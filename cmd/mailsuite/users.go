package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"golang.org/x/term"

	"github.com/mailsuite/mailsuite"
	"github.com/mailsuite/mailsuite/accounts"
	"github.com/mailsuite/mailsuite/internal/atomicfile"
	"github.com/mailsuite/mailsuite/internal/iniedit"
)

func newFlags(name string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("mailsuite "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs, fs.String("config", "mail.ini", "path to mail.ini")
}

// parseInterleaved lets flags follow positional arguments, as admins type
// "user add bob@example.com -quota 1G".
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func runCheckConfig(args []string, stdout, stderr io.Writer) int {
	fs, cfgPath := newFlags("check-config", stderr)
	if _, err := parseInterleaved(fs, args); err != nil {
		return 2
	}
	cfg, err := mailsuite.LoadConfig(*cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	for _, w := range cfg.Warnings() {
		fmt.Fprintln(stderr, "warning:", w)
	}
	fmt.Fprintf(stdout, "%s: OK (%d users, %d aliases, domains %s)\n", cfg.Path, len(cfg.Users), len(cfg.Aliases), strings.Join(cfg.Server.Domains, ", "))
	return 0
}

// readPassword prompts twice on a terminal; otherwise it reads one line, so
// `echo secret | mailsuite user add ...` works in scripts.
func readPassword(stdin io.Reader, stderr io.Writer) (string, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(stderr, "New password: ")
		p1, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", err
		}
		fmt.Fprint(stderr, "Again: ")
		p2, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", err
		}
		if !bytes.Equal(p1, p2) {
			return "", errors.New("the passwords differ")
		}
		return checkPassword(string(p1))
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		return "", fmt.Errorf("reading the password from standard input: %w", err)
	}
	return checkPassword(strings.TrimRight(line, "\r\n"))
}

func checkPassword(p string) (string, error) {
	if len(p) < 8 {
		return "", errors.New("the password must have at least 8 characters")
	}
	return p, nil
}

// passwordLines returns the mail.ini keys that store a password.
func passwordLines(password string) ([][2]string, error) {
	hash, err := accounts.HashPassword(password)
	if err != nil {
		return nil, err
	}
	return [][2]string{{"password", hash}, {"cram_md5", accounts.CRAMMD5Secret(password)}}, nil
}

func runPasswd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mailsuite passwd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	pw, err := readPassword(stdin, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "mailsuite passwd:", err)
		return 1
	}
	lines, err := passwordLines(pw)
	if err != nil {
		fmt.Fprintln(stderr, "mailsuite passwd:", err)
		return 1
	}
	for _, kv := range lines {
		fmt.Fprintf(stdout, "%s = %s\n", kv[0], kv[1])
	}
	return 0
}

func runUser(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	sub, args := args[0], args[1:]
	fs, cfgPath := newFlags("user "+sub, stderr)
	quota := fs.String("quota", "", "quota, e.g. 2G (user add)")
	aliases := fs.String("aliases", "", "comma-separated extra addresses (user add)")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return 2
	}
	if sub == "list" {
		return userList(*cfgPath, stdout, stderr)
	}
	if len(pos) != 1 {
		fmt.Fprintf(stderr, "mailsuite user %s: want one ADDRESS\n", sub)
		return 2
	}
	addr := pos[0]
	section := "user " + addr
	err = editConfig(*cfgPath, func(f *iniedit.File) error {
		switch sub {
		case "add":
			if f.Has(section) {
				return fmt.Errorf("%s already exists (use user passwd to change the password)", addr)
			}
			pw, err := readPassword(stdin, stderr)
			if err != nil {
				return err
			}
			kv, err := passwordLines(pw)
			if err != nil {
				return err
			}
			if *quota != "" {
				kv = append(kv, [2]string{"quota", *quota})
			}
			if *aliases != "" {
				kv = append(kv, [2]string{"aliases", *aliases})
			}
			f.AddSection(section, kv...)
		case "del":
			if err := f.RemoveSection(section); err != nil {
				return err
			}
			return dropFromAliases(*cfgPath, f, addr, stdout)
		case "passwd":
			if !f.Has(section) {
				return fmt.Errorf("no user %s", addr)
			}
			pw, err := readPassword(stdin, stderr)
			if err != nil {
				return err
			}
			kv, err := passwordLines(pw)
			if err != nil {
				return err
			}
			for _, p := range kv {
				if err := f.Set(section, p[0], p[1]); err != nil {
					return err
				}
			}
		default:
			return fmt.Errorf("unknown subcommand %q (add, del, list, passwd)", sub)
		}
		return nil
	})
	if err != nil {
		fmt.Fprintf(stderr, "mailsuite user %s: %v\n", sub, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: user %s done; a running server picks it up within 2 seconds\n", *cfgPath, sub)
	return 0
}

// editConfig applies edit to mail.ini and writes it back atomically, but
// only if the result is still a valid configuration.
func editConfig(path string, edit func(*iniedit.File) error) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	f := iniedit.Parse(data)
	if err := edit(f); err != nil {
		return err
	}
	out := f.Bytes()
	if _, err := mailsuite.ParseConfig(path, out); err != nil {
		return fmt.Errorf("the change would make the file invalid, so it was not written: %w", err)
	}
	return atomicfile.Writer{Perm: st.Mode().Perm()}.WriteFile(path, out)
}

func userList(path string, stdout, stderr io.Writer) int {
	cfg, err := mailsuite.LoadConfig(path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	for _, u := range cfg.Users {
		var notes []string
		if u.Disabled {
			notes = append(notes, "disabled")
		}
		if u.Quota > 0 {
			notes = append(notes, fmt.Sprintf("quota %d", u.Quota))
		}
		if len(u.Aliases) > 0 {
			notes = append(notes, "aliases "+strings.Join(u.Aliases, ","))
		}
		fmt.Fprintf(stdout, "%s\t%s\n", u.Address, strings.Join(notes, "; "))
	}
	return 0
}

// dropFromAliases takes a deleted user out of every alias and list; an
// alias left with nobody is removed. Each change is reported, since the
// admin edited only the user.
func dropFromAliases(path string, f *iniedit.File, addr string, stdout io.Writer) error {
	cfg, err := mailsuite.LoadConfig(path)
	if err != nil {
		return err
	}
	for _, alias := range sortedAliases(cfg.Aliases) {
		targets := cfg.Aliases[alias]
		var kept []string
		for _, t := range targets {
			if !strings.EqualFold(t, addr) {
				kept = append(kept, t)
			}
		}
		switch {
		case len(kept) == len(targets):
			continue
		case len(kept) == 0:
			fmt.Fprintf(stdout, "removed alias %s (it pointed only at %s)\n", alias, addr)
			err = f.RemoveKey("aliases", alias)
		default:
			fmt.Fprintf(stdout, "took %s out of %s\n", addr, alias)
			err = f.Set("aliases", alias, strings.Join(kept, ", "))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func sortedAliases(m map[string][]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
