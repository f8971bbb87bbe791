package mailstore_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/mailsuite/mailsuite/mailstore"
)

// A delivery is written once and committed to every recipient; a session
// then syncs the INBOX, which assigns the UIDs.
func Example() {
	root, err := os.MkdirTemp("", "mailstore-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(root)
	store, err := mailstore.Open(mailstore.Options{Root: root, Hostname: "mx.example.com"})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	d, err := store.BeginDelivery()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprint(d, "From: alice@example.org\r\nSubject: hello\r\n\r\nHi!\r\n")
	if err := d.Commit(context.Background(), []string{"bob@example.com", "carol@example.com"}); err != nil {
		log.Fatal(err)
	}

	bob, err := store.User("Bob@Example.com")
	if err != nil {
		log.Fatal(err)
	}
	inbox, err := bob.Folder("INBOX")
	if err != nil {
		log.Fatal(err)
	}
	msgs, err := inbox.Sync()
	if err != nil {
		log.Fatal(err)
	}
	if _, err := inbox.SetFlags([]mailstore.UID{msgs[0].UID}, mailstore.FlagsAdd, []mailstore.Flag{mailstore.FlagSeen}); err != nil {
		log.Fatal(err)
	}
	msgs, _ = inbox.Sync()
	fmt.Println(bob.Name(), len(msgs), msgs[0].UID, msgs[0].Size, msgs[0].Flags)
	// Output: bob@example.com 1 1 48 [\Seen]
}
