package sasl_test

import (
	"context"
	"fmt"
	"log"

	"github.com/mailsuite/mailsuite/accounts"
	"github.com/mailsuite/mailsuite/internal/sasl"
)

// A protocol server drives the exchange: it base64-decodes each client
// line, passes it to Next, and sends back the challenge until done.
func ExampleNewServer() {
	dir, err := accounts.New(accounts.Config{
		Domains: []string{"example.com"},
		Users:   []accounts.User{{Address: "bob@example.com", Password: "{PLAIN}secret"}},
	})
	if err != nil {
		log.Fatal(err)
	}
	srv, err := sasl.NewServer(context.Background(), "LOGIN", dir, "mail.example.com", func(user string) {
		fmt.Println("logged in:", user)
	})
	if err != nil {
		log.Fatal(err)
	}
	// "AUTH LOGIN" without an initial response, then the two answers.
	for _, resp := range [][]byte{nil, []byte("Bob@example.com"), []byte("secret")} {
		challenge, done, err := srv.Next(resp)
		fmt.Printf("challenge %q done %v err %v\n", challenge, done, err)
	}
	// Output:
	// challenge "Username:" done false err <nil>
	// challenge "Password:" done false err <nil>
	// logged in: bob@example.com
	// challenge "" done true err <nil>
}
