package integration

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// smtpTimeout bounds every SMTP command of the test clients.
const smtpTimeout = 20 * time.Second

// submit sends msg over the submission port like a mail client: STARTTLS
// (certificate verified), AUTH PLAIN, MAIL, RCPT..., DATA. It returns nil
// only for a final 250.
func submit(addr string, tc *tls.Config, user, pass, from string, to []string, msg []byte) error {
	c, err := dialSMTP(addr, tc, true)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", user, pass)); err != nil {
		return fmt.Errorf("AUTH: %w", err)
	}
	return sendOn(c, from, to, msg)
}

// sendMX delivers msg over port 25 as another mail server would: STARTTLS
// when tc is set, no AUTH.
func sendMX(addr string, tc *tls.Config, from string, to []string, msg []byte) error {
	c, err := dialSMTP(addr, tc, tc != nil)
	if err != nil {
		return err
	}
	defer c.Close()
	return sendOn(c, from, to, msg)
}

func dialSMTP(addr string, tc *tls.Config, starttls bool) (*smtp.Client, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	var c *smtp.Client
	if starttls {
		c, err = smtp.NewClientStartTLS(conn, tc)
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("STARTTLS: %w", err)
		}
	} else {
		c = smtp.NewClient(conn)
	}
	c.CommandTimeout = smtpTimeout
	c.SubmissionTimeout = smtpTimeout
	if err := c.Hello("client.example.net"); err != nil {
		c.Close()
		return nil, fmt.Errorf("EHLO: %w", err)
	}
	return c, nil
}

func sendOn(c *smtp.Client, from string, to []string, msg []byte) error {
	if err := c.Mail(from, nil); err != nil {
		return fmt.Errorf("MAIL FROM: %w", err)
	}
	for _, rcpt := range to {
		if err := c.Rcpt(rcpt, nil); err != nil {
			return fmt.Errorf("RCPT TO:<%s>: %w", rcpt, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("DATA write: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("end of DATA: %w", err)
	}
	c.Quit() // the 250 above is what counts
	return nil
}

// smtpCode is the reply code inside err (0 if none: a network error).
func smtpCode(err error) int {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}

// smtpEnhanced is the enhanced status code inside err as "x.y.z".
func smtpEnhanced(err error) string {
	var se *smtp.SMTPError
	if errors.As(err, &se) && se.EnhancedCode != smtp.NoEnhancedCode && se.EnhancedCode != smtp.EnhancedCodeNotSet {
		return fmt.Sprintf("%d.%d.%d", se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2])
	}
	return ""
}
