package smtpd_test

import (
	"fmt"
	"log"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/emersion/go-smtp"

	"github.com/mailsuite/mailsuite/smtpd"
)

// An embedder that receives mail for a help desk and saves every
// attachment to a directory. No account list or mail store is needed:
// OnRcptTo decides who may receive, OnMessage takes the mail.
func Example() {
	dir, err := os.MkdirTemp("", "attachments")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	srv, err := smtpd.New(smtpd.Options{
		Hostname: "helpdesk.example.com",
		Logger:   slog.New(slog.DiscardHandler),
		Hooks: smtpd.Hooks{
			OnRcptTo: func(_ *smtpd.SessionInfo, from, to string) error {
				if !strings.HasSuffix(strings.ToLower(to), "@helpdesk.example.com") {
					return smtpd.ErrRejected // 550 5.7.1
				}
				return nil
			},
			OnMessage: func(m *smtpd.Message) error {
				_, _, atts, err := m.Parts()
				if err != nil {
					return smtpd.ErrRejected // unparseable: refuse it
				}
				for _, a := range atts {
					// Never trust a sender's file name as a path.
					name := m.ID + "-" + filepath.Base(a.Filename)
					if err := os.WriteFile(filepath.Join(dir, name), a.Data, 0o600); err != nil {
						return err // 451 4.3.0: the client will retry
					}
				}
				return nil
			},
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()

	message := "From: printer@office.example\r\n" +
		"To: support@helpdesk.example.com\r\n" +
		"Subject: Scan\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=b\r\n" +
		"\r\n" +
		"--b\r\n" +
		"Content-Type: text/plain\r\n" +
		"\r\n" +
		"Your scan is attached.\r\n" +
		"--b\r\n" +
		"Content-Type: application/pdf\r\n" +
		"Content-Disposition: attachment; filename=\"../../scan.pdf\"\r\n" +
		"Content-Transfer-Encoding: base64\r\n" +
		"\r\n" +
		"JVBERi0xLjQK\r\n" +
		"--b--\r\n"
	send := func(to string) error {
		c, err := smtp.Dial(ln.Addr().String())
		if err != nil {
			return err
		}
		defer c.Close()
		return c.SendMail("printer@office.example", []string{to}, strings.NewReader(message))
	}
	fmt.Println("send:", send("support@helpdesk.example.com"))
	fmt.Println("send elsewhere:", send("someone@elsewhere.example"))

	files, _ := filepath.Glob(filepath.Join(dir, "*-scan.pdf"))
	for _, f := range files {
		data, _ := os.ReadFile(f)
		fmt.Printf("saved %q\n", data)
	}
	// Output:
	// send: <nil>
	// send elsewhere: SMTP error 550: Rejected
	// saved "%PDF-1.4\n"
}
