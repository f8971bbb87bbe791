package pop3d

import (
	"fmt"
	"strconv"
)

// transactionCommand runs a command in the TRANSACTION state (RFC 1939 §5,
// §7 and RFC 2449 CAPA).
func (c *conn) transactionCommand(cmd command) (quit bool) {
	switch cmd.verb {
	case "CAPA":
		c.capa()
	case "STAT":
		if len(cmd.args) != 0 {
			return c.badCommand("STAT takes no argument")
		}
		n, size, err := c.sess.Stat()
		if err != nil {
			c.reply(c.errorReply(err))
			return false
		}
		c.reply("+OK " + strconv.Itoa(n) + " " + itoa64(size))
	case "LIST", "UIDL":
		return c.listing(cmd)
	case "RETR":
		if len(cmd.args) != 1 {
			return c.badCommand("RETR needs a message number")
		}
		return c.retr(cmd.args[0], -1)
	case "TOP":
		if len(cmd.args) != 2 {
			return c.badCommand("TOP needs a message number and a line count")
		}
		lines, err := parseDecimal(cmd.args[1])
		if err != nil {
			return c.badCommand("invalid line count")
		}
		return c.retr(cmd.args[0], lines)
	case "DELE":
		if len(cmd.args) != 1 {
			return c.badCommand("DELE needs a message number")
		}
		n, err := parseMsgNum(cmd.args[0])
		if err != nil {
			return c.badCommand(err.Error())
		}
		if err := c.sess.Dele(n); err != nil {
			c.reply(c.errorReply(err))
			return false
		}
		c.reply("+OK message " + strconv.Itoa(n) + " deleted")
	case "RSET":
		if err := c.sess.Rset(); err != nil {
			c.reply(c.errorReply(err))
			return false
		}
		n, size, err := c.sess.Stat()
		if err != nil {
			c.reply(c.errorReply(err))
			return false
		}
		c.reply(plural("+OK maildrop has ", n, " message", " (") + itoa64(size) + " octets)")
	case "NOOP":
		c.reply("+OK")
	case "QUIT":
		return c.update()
	case "USER", "PASS", "AUTH", "STLS", "APOP":
		return c.badCommand("already logged in")
	default:
		return c.badCommand("unknown command")
	}
	return false
}

// listing answers LIST and UIDL, with or without a message number.
func (c *conn) listing(cmd command) (quit bool) {
	uidl := cmd.verb == "UIDL"
	field := func(m Message) string {
		if uidl {
			return m.UID
		}
		return itoa64(m.Size)
	}
	switch len(cmd.args) {
	case 1:
		m, ok, quit := c.lookup(cmd.args[0])
		if ok {
			c.reply("+OK " + strconv.Itoa(m.Number) + " " + field(m))
		}
		return quit
	case 0:
		msgs, err := c.sess.List()
		if err != nil {
			c.reply(c.errorReply(err))
			return false
		}
		if uidl {
			c.reply("+OK unique-id listing follows")
		} else {
			var size int64
			for _, m := range msgs {
				size += m.Size
			}
			c.reply(plural("+OK ", len(msgs), " message", " (") + itoa64(size) + " octets)")
		}
		var buf []byte
		for _, m := range msgs {
			buf = strconv.AppendInt(buf[:0], int64(m.Number), 10)
			buf = append(buf, ' ')
			if uidl {
				buf = append(buf, m.UID...)
			} else {
				buf = strconv.AppendInt(buf, m.Size, 10)
			}
			buf = append(buf, '\r', '\n')
			c.bw.Write(buf)
		}
		c.bw.WriteString(".\r\n")
	default:
		return c.badCommand(cmd.verb + " takes at most one argument")
	}
	return false
}

// lookup parses a message-number argument and finds the message. When it
// is not found (ok false) the error has been answered, and quit says
// whether the session ends (too many bad commands).
func (c *conn) lookup(arg string) (m Message, ok, quit bool) {
	n, err := parseMsgNum(arg)
	if err != nil {
		return Message{}, false, c.badCommand(err.Error())
	}
	if m, err = c.sess.Message(n); err != nil {
		c.reply(c.errorReply(err))
		return Message{}, false, false
	}
	return m, true, false
}

// retr answers RETR (bodyLines < 0) and TOP (RFC 1939 §7), streaming the
// message. Once "+OK" is out, a failure can only end the session.
func (c *conn) retr(arg string, bodyLines int) (quit bool) {
	m, ok, quit := c.lookup(arg)
	if !ok {
		return quit
	}
	n := m.Number
	open := c.sess.Retr
	if bodyLines >= 0 {
		open = c.sess.Top
	}
	rc, err := open(n)
	if err != nil {
		c.reply(c.errorReply(err))
		return false
	}
	defer rc.Close()
	if bodyLines >= 0 {
		c.reply("+OK top of message follows")
	} else {
		c.reply("+OK " + itoa64(m.Size) + " octets")
	}
	if _, err := c.mw.write(c.bw, rc, bodyLines); err != nil {
		c.fail(fmt.Errorf("pop3d: sending message %d: %w", n, err))
		return true
	}
	return false
}

// update runs QUIT in TRANSACTION: the UPDATE state (RFC 1939 §6). The
// deletions are durable before "+OK" is sent.
func (c *conn) update() (quit bool) {
	c.state = stateUpdate
	deleted, err := c.sess.Update(c.ctx)
	// Release the maildrop before the final reply: a client that logs in
	// again the moment it reads +OK must not find it still locked.
	if cerr := c.sess.Close(); cerr != nil {
		c.log().Warn("pop3: closing session", "user", c.loggedInUser(), "err", cerr)
	}
	c.sess = nil
	if h := c.srv.opts.Hooks.OnUpdate; h != nil {
		h(c.id, c.loggedInUser(), deleted, err)
	}
	if err != nil {
		c.reply(c.errorReply(fmt.Errorf("pop3d: update: %w", err)))
		return true
	}
	c.reply("+OK " + c.srv.opts.Hostname + " POP3 server signing off (" +
		plural("", deleted, " message", " deleted)"))
	return true
}

// fail logs an error that ends the session after a reply was already sent.
func (c *conn) fail(err error) {
	c.log().Warn("pop3: session ended", "user", c.loggedInUser(), "err", err)
	if h := c.srv.opts.Hooks.OnError; h != nil {
		h(c.id, err)
	}
}

func itoa64(n int64) string { return strconv.FormatInt(n, 10) }

// plural formats "<pre><n><noun>[s]<post>".
func plural(pre string, n int, noun, post string) string {
	s := pre + strconv.Itoa(n) + noun
	if n != 1 {
		s += "s"
	}
	return s + post
}
