package mailstore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkQuotaDelivery: RCPT's quota check plus a delivery, for a user
// with a quota whose INBOX new/ already holds unread messages (a POP3
// user who leaves mail on the server, or one away for a while).
func BenchmarkQuotaDelivery(b *testing.B) {
	for _, unread := range []int{0, 20000} {
		b.Run(fmt.Sprintf("unread=%d", unread), func(b *testing.B) {
			s := openStore(b, b.TempDir(), func(o *Options) {
				o.Quota = func(string) int64 { return 10 << 30 }
			})
			mustUser(b, s, "q@x.test")
			st, err := s.userState("q@x.test")
			if err != nil {
				b.Fatal(err)
			}
			new := filepath.Join(st.dir, "new")
			body := []byte("Subject: bench\r\n\r\nhello\r\n")
			for i := range unread {
				name := fmt.Sprintf("%d.M%dP1Q%d.fixture,S=%d,W=%d", 1700000000+i/100, i, i, len(body), len(body))
				if err := os.WriteFile(filepath.Join(new, name), body, 0o600); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for range b.N {
				if err := s.CheckQuota("q@x.test", int64(len(body))); err != nil {
					b.Fatal(err)
				}
				d, err := s.BeginDelivery()
				if err != nil {
					b.Fatal(err)
				}
				d.Write(body)
				if err := d.Commit(context.Background(), []string{"q@x.test"}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}
