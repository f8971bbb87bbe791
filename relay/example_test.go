package relay_test

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/mailsuite/mailsuite/relay"
)

// An embedder queues a message; Start (not called here) would deliver it
// by MX. The admin functions read the same files.
func Example() {
	dir, err := os.MkdirTemp("", "relay-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	q, err := relay.New(relay.Options{DataDir: dir, Hostname: "mail.example.com", LocalDomains: []string{"example.com"}})
	if err != nil {
		panic(err)
	}
	defer q.Close()
	id, err := q.Enqueue(context.Background(), "alice@example.com", []string{"bob@example.org"},
		strings.NewReader("From: alice@example.com\r\nSubject: hi\r\n\r\nhello\r\n"))
	if err != nil {
		panic(err)
	}
	info, err := q.Show(id)
	if err != nil {
		panic(err)
	}
	fmt.Println(info.From, "->", info.Recipients[0].Addr, info.Recipients[0].State)
	// Output: alice@example.com -> bob@example.org pending
}

// GenerateKey makes a DKIM key; the returned text goes into DNS.
func ExampleGenerateKey() {
	dir, err := os.MkdirTemp("", "relay-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	record, err := relay.GenerateKey(dir, "example.com", "mail")
	if err != nil {
		panic(err)
	}
	fmt.Println(relay.DKIMRecordName("example.com", "mail"), strings.HasPrefix(record, "v=DKIM1; k=rsa; p="))
	// Output: mail._domainkey.example.com true
}
