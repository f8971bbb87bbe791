package relay

import (
	"bytes"
	"errors"
	"io/fs"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dkim"
)

func TestDKIMSignatureVerifies(t *testing.T) {
	for _, kt := range []KeyType{KeyRSA, KeyEd25519} {
		t.Run(string(kt), func(t *testing.T) {
			d := startDNS(t)
			s := startSink(t, "127.0.0.1", 0, nil, nil)
			dir := t.TempDir()
			record, err := GenerateKeyType(dir, "Local.test", "mail", kt)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(record, "v=DKIM1; k="+string(kt)+"; p=") {
				t.Errorf("record = %q", record)
			}
			// TXT strings are at most 255 bytes (RFC 1035 §3.3.14).
			var chunks []string
			for r := record; r != ""; r = r[min(len(r), 255):] {
				chunks = append(chunks, `"`+r[:min(len(r), 255)]+`"`)
			}
			d.add(t, DKIMRecordName("local.test", "mail")+". 60 IN TXT "+strings.Join(chunks, " "),
				"remote.test. 60 IN MX 10 mx1.remote.test.", "mx1.remote.test. 60 IN A 127.0.0.1")
			again, err := DKIMRecord(dir, "local.test", "mail")
			if err != nil || again != record {
				t.Errorf("DKIMRecord = %q, %v; want the generated record", again, err)
			}
			q := startQueue(t, testOptions(dir, d, s.port()))
			enqueue(t, q, "alice@local.test", []string{"bob@remote.test"}, testMessage("alice@local.test", "m1@test"))
			// A From of a domain without key goes out unsigned.
			enqueue(t, q, "carol@elsewhere.test", []string{"bob@remote.test"}, testMessage("carol@elsewhere.test", "m2@test"))
			waitFor(t, "deliveries", func() bool { return len(s.messages()) == 2 })
			for _, m := range s.messages() {
				signed := bytes.HasPrefix(m.Data, []byte("DKIM-Signature:"))
				if m.From == "carol@elsewhere.test" {
					if signed {
						t.Error("foreign From domain was signed")
					}
					continue
				}
				if !signed {
					t.Fatalf("not signed:\n%s", m.Data)
				}
				vs, err := dkim.VerifyWithOptions(bytes.NewReader(m.Data), &dkim.VerifyOptions{LookupTXT: d.lookupTXT})
				if err != nil || len(vs) != 1 {
					t.Fatalf("verify: %v, %d results", err, len(vs))
				}
				if vs[0].Err != nil || vs[0].Domain != "local.test" {
					t.Errorf("verification: domain %q, err %v", vs[0].Domain, vs[0].Err)
				}
				// Tampering must break it: the test can fail.
				bad := bytes.Replace(m.Data, []byte("Hello there"), []byte("Hello there!"), 1)
				vs, _ = dkim.VerifyWithOptions(bytes.NewReader(bad), &dkim.VerifyOptions{LookupTXT: d.lookupTXT})
				if len(vs) != 1 || vs[0].Err == nil {
					t.Error("tampered message still verifies")
				}
			}
		})
	}
}

func TestDKIMDisabledAndKeyChecks(t *testing.T) {
	dir := t.TempDir()
	if _, err := GenerateKey(dir, "local.test", "mail"); err != nil {
		t.Fatal(err)
	}
	if _, err := GenerateKey(dir, "local.test", "mail"); !errors.Is(err, fs.ErrExist) {
		t.Errorf("second GenerateKey: %v, want ErrExist", err)
	}
	for _, bad := range [][2]string{{"../x.test", "mail"}, {"local.test", "a/b"}, {"nodot", "mail"}, {"local.test", ""}} {
		if _, err := GenerateKey(dir, bad[0], bad[1]); err == nil {
			t.Errorf("GenerateKey(%q, %q) accepted", bad[0], bad[1])
		}
	}
	q, err := New(Options{DataDir: dir, LocalDomains: []string{"local.test"}, DisableDKIM: true})
	if err != nil {
		t.Fatal(err)
	}
	id := enqueue(t, q, "alice@local.test", []string{"bob@remote.test"}, testMessage("alice@local.test", "m1@test"))
	sig, err := q.dkimHeader(q.spool.path(id, ".msg"))
	if err != nil || sig != nil {
		t.Errorf("DisableDKIM: signature %q, %v", sig, err)
	}
}
