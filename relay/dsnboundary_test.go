package relay

import (
	"strings"
	"testing"
	"time"
)

// RFC 2046 §5.1.1: a boundary is 1 to 70 characters, whatever the
// hostname and queue ID lengths.
func TestDSNBoundaryAtMost70(t *testing.T) {
	host := strings.Repeat("relay-", 8) + "mail.example-company.co.uk"
	e := &Envelope{ID: strings.Repeat("Q", 60), From: "alice@local.test", Created: time.Unix(0, 0),
		Recipients: []Recipient{{Addr: "bob@remote.test", State: StateFailed, Status: "5.1.1"}}}
	for _, id := range []string{"a.b1", strings.Repeat("Q", 61) + ".b1"} {
		data := buildDSN(dsnInput{ID: id, Hostname: host, Postmaster: "postmaster@local.test", Env: e,
			Recipients: e.Recipients, Action: actionFailed, Now: time.Unix(0, 0), Header: []byte("Subject: x\r\n")})
		d := parseDSN(t, data)
		_, params, err := d.header.ContentType()
		if err != nil {
			t.Fatal(err)
		}
		if b := params["boundary"]; len(b) == 0 || len(b) > 70 {
			t.Errorf("boundary %q is %d characters", b, len(b))
		}
	}
}
