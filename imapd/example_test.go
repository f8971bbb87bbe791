package imapd_test

import (
	"crypto/tls"
	"fmt"
	"log"
	"net"
	"os"

	"github.com/mailsuite/mailsuite/accounts"
	"github.com/mailsuite/mailsuite/imapd"
	"github.com/mailsuite/mailsuite/internal/authlimit"
	"github.com/mailsuite/mailsuite/mailstore"
)

// Embedding the IMAP server: one Server per listener, sharing the account
// directory, the store and the failure limiter with the other protocols.
func ExampleNew() {
	dir, err := accounts.New(accounts.Config{
		Domains: []string{"example.org"},
		Users:   []accounts.User{{Address: "alice@example.org", Password: "{PLAIN}secret"}},
	})
	if err != nil {
		log.Fatal(err)
	}
	root, err := os.MkdirTemp("", "imapd-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(root)
	store, err := mailstore.Open(mailstore.Options{Root: root})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	var cert tls.Certificate // load yours with tls.LoadX509KeyPair

	srv, err := imapd.New(imapd.Options{
		Hostname:  "mail.example.org",
		Accounts:  dir,
		Store:     store,
		AuthLimit: authlimit.New(authlimit.Options{}),
		TLSMode:   imapd.TLSOptional, // STARTTLS on 143; TLSImplicit on 993
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}},
		Hooks: imapd.Hooks{
			OnConnect: func(remote net.Addr) bool { return true }, // refuse by IP here
			OnCommand: func(id, line string) { log.Printf("%s C: %s", id, line) },
			OnReply:   func(id, line string) { log.Printf("%s S: %s", id, line) },
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
	fmt.Println("serving IMAP")
	srv.Close()
	// Output: serving IMAP
}
