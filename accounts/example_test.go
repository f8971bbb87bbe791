package accounts_test

import (
	"context"
	"fmt"
	"log"

	"github.com/mailsuite/mailsuite/accounts"
)

func Example() {
	// The CLI writes hashes like this into mail.ini; cheap parameters here
	// keep the example fast (HashPassword uses Dovecot's default cost).
	hash, err := accounts.HashPasswordWith("correct horse", accounts.HashOptions{Memory: 64, Time: 1})
	if err != nil {
		log.Fatal(err)
	}
	dir, err := accounts.New(accounts.Config{
		Domains: []string{"example.com"},
		Users: []accounts.User{{
			Address:  "bob@example.com",
			Password: hash,
			CRAMMD5:  accounts.CRAMMD5Secret("correct horse"),
			Aliases:  []string{"robert@example.com"},
		}},
		Aliases: map[string][]string{"sales@example.com": {"Bob@example.com"}},
	})
	if err != nil {
		log.Fatal(err)
	}

	user, err := dir.Authenticate(context.Background(), "Bob@Example.com", "correct horse")
	fmt.Println(user, err)

	for _, rcpt := range []string{"sales@example.com", "robert+lists@example.com", "nobody@example.com", "x@example.net"} {
		owners, err := dir.Resolve(rcpt)
		fmt.Println(rcpt, owners, err)
	}
	// Output:
	// bob@example.com <nil>
	// sales@example.com [bob@example.com] <nil>
	// robert+lists@example.com [bob@example.com] <nil>
	// nobody@example.com [] accounts: no such user: nobody@example.com
	// x@example.net [] accounts: domain is not local: example.net
}
