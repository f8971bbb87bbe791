package pop3d

import (
	"errors"
	"strconv"
	"strings"
)

// command is one parsed client line (RFC 1939 §3: a case-insensitive
// keyword of three or four characters, then arguments separated by single
// spaces).
type command struct {
	verb string   // upper case
	rest string   // everything after the first space, verbatim (PASS)
	args []string // rest split on spaces
}

var (
	errEmptyLine  = errors.New("empty command")
	errBadKeyword = errors.New("malformed command keyword")
	errBadChars   = errors.New("control characters in command")
	errBadNumber  = errors.New("invalid message number")
)

// maxArgs bounds the arguments a command may carry (TOP has the most: 2).
const maxArgs = 2

// parseCommand splits a line into keyword and arguments. It does not know
// which keywords exist; the dispatcher does.
func parseCommand(line string) (command, error) {
	if line == "" {
		return command{}, errEmptyLine
	}
	for i := 0; i < len(line); i++ {
		if c := line[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return command{}, errBadChars
		}
	}
	verb, rest, _ := strings.Cut(line, " ")
	if len(verb) < 3 || len(verb) > 4 {
		return command{}, errBadKeyword
	}
	for i := 0; i < len(verb); i++ {
		c := verb[i] | 0x20
		if c < 'a' || c > 'z' {
			return command{}, errBadKeyword
		}
	}
	cmd := command{verb: strings.ToUpper(verb), rest: rest}
	if f := strings.Fields(rest); len(f) > 0 {
		if len(f) > maxArgs && cmd.verb != "PASS" {
			return command{}, errTooManyArgs
		}
		cmd.args = f
	}
	return cmd, nil
}

var errTooManyArgs = errors.New("too many arguments")

// parseMsgNum parses a message number (RFC 1939 §3: decimal, from 1).
func parseMsgNum(s string) (int, error) {
	n, err := parseDecimal(s)
	if err != nil || n < 1 {
		return 0, errBadNumber
	}
	return n, nil
}

// parseDecimal parses a non-negative decimal without sign, within int32.
func parseDecimal(s string) (int, error) {
	if s == "" || len(s) > 10 {
		return 0, errBadNumber
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errBadNumber
		}
	}
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return 0, errBadNumber
	}
	return int(n), nil
}
