package relay

import (
	"bytes"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dkim"
)

// RFC 6376 §8.15: a second From (or Subject) added above the signed one
// must break the signature, or a replayed message could show a forged
// author while still verifying as ours.
func TestDKIMAddedHeaderBreaksSignature(t *testing.T) {
	d := startDNS(t)
	dir := t.TempDir()
	record, err := GenerateKeyType(dir, "local.test", "mail", KeyEd25519)
	if err != nil {
		t.Fatal(err)
	}
	d.add(t, DKIMRecordName("local.test", "mail")+`. 60 IN TXT "`+record+`"`)
	q, err := New(testOptions(dir, d, 1))
	if err != nil {
		t.Fatal(err)
	}
	id := enqueue(t, q, "alice@local.test", []string{"bob@remote.test"}, testMessage("alice@local.test", "m1@test"))
	m := &message{q: q, path: q.spool.path(id, ".msg")}
	rd, err := m.open()
	if err != nil {
		t.Fatal(err)
	}
	var signed bytes.Buffer
	signed.ReadFrom(rd)
	rd.Close()
	verify := func(data []byte) error {
		vs, err := dkim.VerifyWithOptions(bytes.NewReader(data), &dkim.VerifyOptions{LookupTXT: d.lookupTXT})
		if err != nil {
			return err
		}
		if len(vs) != 1 {
			t.Fatalf("%d signatures", len(vs))
		}
		return vs[0].Err
	}
	if err := verify(signed.Bytes()); err != nil {
		t.Fatalf("untouched message does not verify: %v", err)
	}
	for _, field := range []string{"From: <ceo@local.test>", "Subject: urgent: wire money"} {
		forged := strings.Replace(signed.String(), "\r\nFrom: ", "\r\n"+field+"\r\nFrom: ", 1)
		if forged == signed.String() {
			t.Fatal("forgery did not apply")
		}
		if err := verify([]byte(forged)); err == nil {
			t.Errorf("signature still verifies with %q added", field)
		}
	}
}
