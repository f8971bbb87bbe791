// Command mailsuite runs the mail server and administers its mail.ini.
//
//	mailsuite [serve] [-config FILE]        run SMTP, POP3, IMAP and the relay
//	mailsuite check-config [-config FILE]   validate mail.ini
//	mailsuite passwd                        print a password hash for mail.ini
//	mailsuite user add|del|list|passwd ...  manage users in mail.ini
//	mailsuite queue list|show|retry|flush|delete ...
//	mailsuite dkim generate DOMAIN
//	mailsuite check-store [-repair]         verify (and repair) the maildir tree
package main

import (
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

const usage = `usage: mailsuite COMMAND [-config FILE] [ARGS]

commands:
  serve          run the mail server (the default)
  check-config   check mail.ini and report the first problem
  passwd         read a password and print the lines to paste into mail.ini
  user add ADDRESS [-quota SIZE] [-aliases a@d,b@d]
  user del ADDRESS
  user list
  user passwd ADDRESS
  queue list|show ID|retry ID|flush|delete ID|bounce ID
  dkim generate|show DOMAIN [-selector S] [-type rsa|ed25519]
  check-store [-repair] [-user ADDRESS]

-config defaults to ./mail.ini. Passwords are read from standard input when
it is not a terminal, so scripts can pipe them in.
`

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return runServe(args, stderr)
	case "check-config":
		return runCheckConfig(args, stdout, stderr)
	case "passwd":
		return runPasswd(args, stdin, stdout, stderr)
	case "user":
		return runUser(args, stdin, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	case "queue":
		return runQueue(args, stdout, stderr)
	case "dkim":
		return runDKIM(args, stdout, stderr)
	case "check-store":
		return runCheckStore(args, stdout, stderr)
	}
	fmt.Fprintf(stderr, "mailsuite: unknown command %q\n\n%s", cmd, usage)
	return 2
}
