package pop3d_test

import (
	"bufio"
	"fmt"
	"log"
	"net"
	"os"

	"github.com/mailsuite/mailsuite/accounts"
	"github.com/mailsuite/mailsuite/mailstore"
	"github.com/mailsuite/mailsuite/pop3d"
)

// An embedder builds the shared account directory and store, then one
// server per listener, with hooks for its own transcript log.
func Example() {
	root, _ := os.MkdirTemp("", "pop3d-example")
	defer os.RemoveAll(root)
	store, err := mailstore.Open(mailstore.Options{Root: root})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	dir, err := accounts.New(accounts.Config{
		Domains: []string{"example.org"},
		Users:   []accounts.User{{Address: "alice@example.org", Password: "{PLAIN}secret"}},
	})
	if err != nil {
		log.Fatal(err)
	}
	srv, err := pop3d.New(pop3d.Options{
		Hostname:          "pop.example.org",
		Accounts:          dir,
		Store:             store,
		AllowInsecureAuth: true, // loopback only; use TLSImplicit or TLSOptional in production
		Hooks: pop3d.Hooks{
			OnCommand: func(id, line string) { fmt.Println("C:", line) },
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve(ln)

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	for _, cmd := range []string{"", "USER alice@example.org", "PASS secret", "STAT", "QUIT"} {
		if cmd != "" {
			fmt.Fprintf(conn, "%s\r\n", cmd)
		}
		reply, _ := r.ReadString('\n')
		fmt.Print("S: ", reply[:len(reply)-2], "\n")
	}
	// Output:
	// S: +OK pop.example.org POP3 server ready
	// C: USER alice@example.org
	// S: +OK send PASS
	// C: PASS <redacted>
	// S: +OK maildrop has 0 messages (0 octets)
	// C: STAT
	// S: +OK 0 0
	// C: QUIT
	// S: +OK pop.example.org POP3 server signing off (0 messages deleted)
}
