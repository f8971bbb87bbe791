package relay

import "testing"

// RFC 7505 §3: a domain with null MX has the single record "0 .". One that
// publishes the null target twice accepts no mail either; it must not be
// retried for days as if its servers were down.
func TestRepeatedNullMXIsPermanent(t *testing.T) {
	d := startDNS(t)
	d.add(t, "null2.test. 60 IN MX 0 .", "null2.test. 60 IN MX 10 .")
	q, err := New(testOptions(t.TempDir(), d, 1))
	if err != nil {
		t.Fatal(err)
	}
	hosts, err := q.mxHosts(t.Context(), "null2.test")
	de := asDeliveryError(err)
	if err == nil || de.Temporary() || de.status != "5.1.10" {
		t.Errorf("mxHosts = %q, %v; want a permanent 5.1.10", hosts, err)
	}
}
