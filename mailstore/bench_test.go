package mailstore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BenchmarkDeliver measures durable deliveries per second into one
// mailbox, by 1 and 20 concurrent writers, 4 KB and 100 KB messages.
func BenchmarkDeliver(b *testing.B) {
	for _, size := range []int{4 << 10, 100 << 10} {
		for _, writers := range []int{1, 20} {
			b.Run(fmt.Sprintf("size=%dK/writers=%d", size>>10, writers), func(b *testing.B) {
				s := openStore(b, b.TempDir())
				mustUser(b, s, "bench@x.test")
				body := []byte(strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n", size/64))
				b.SetBytes(int64(len(body)))
				b.ResetTimer()
				cpu0 := processCPU()
				var wg sync.WaitGroup
				var next sync.Mutex
				n := 0
				for w := 0; w < writers; w++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for {
							next.Lock()
							if n >= b.N {
								next.Unlock()
								return
							}
							n++
							next.Unlock()
							d, err := s.BeginDelivery()
							if err != nil {
								b.Error(err)
								return
							}
							d.Write(body)
							if err := d.Commit(context.Background(), []string{"bench@x.test"}); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				b.StopTimer()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
				// CPU per delivery (user+system, whole process) varies less
				// than throughput on a machine shared with other work.
				b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N)/1e3, "cpu-µs/op")
				// Group commit: how many fsyncs of new/ the deliveries shared.
				if st, err := s.userState("bench@x.test"); err == nil {
					syncer := s.dirSyncer(st.dir + "/new")
					syncer.mu.Lock()
					b.ReportMetric(float64(syncer.completed)/float64(b.N), "dirsyncs/op")
					syncer.mu.Unlock()
				}
			})
		}
	}
}

// processCPU is the user and system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// makeBigFolder writes n message files straight into a maildir's cur/ (no
// fsync: it is a fixture) as another program would have left them.
func makeBigFolder(b *testing.B, dir string, n int) {
	b.Helper()
	for _, d := range []string{"cur", "new", "tmp"} {
		os.MkdirAll(filepath.Join(dir, d), 0o700)
	}
	body := []byte("Subject: bench\r\n\r\nhello\r\n")
	for i := 0; i < n; i++ {
		flags := ""
		if i%3 == 0 {
			flags = "S"
		}
		name := fmt.Sprintf("%d.M%dP1Q%d.bench,S=%d,W=%d:2,%s", 1700000000+i/100, i, i, len(body), len(body), flags)
		if err := os.WriteFile(filepath.Join(dir, "cur", name), body, 0o600); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSync100k: cold (a fresh Store opens a 100k folder that has a
// dovecot-uidlist: reads the list and cur/, stats each file once) and warm
// (Sync of an already indexed, unchanged folder: what an IMAP SELECT costs).
func BenchmarkSync100k(b *testing.B) {
	const n = 100000
	root := b.TempDir()
	dir := filepath.Join(root, "x.test", "big")
	makeBigFolder(b, dir, n)
	s0 := openStore(b, root)
	if msgs := mustSync(b, mustFolder(b, mustUser(b, s0, "big@x.test"), Inbox)); len(msgs) != n {
		b.Fatalf("%d messages", len(msgs))
	}
	s0.Close()
	b.Run("cold", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			s := openStore(b, root)
			f := mustFolder(b, mustUser(b, s, "big@x.test"), Inbox)
			if msgs := mustSync(b, f); len(msgs) != n {
				b.Fatalf("%d messages", len(msgs))
			}
			s.Close()
		}
	})
	b.Run("warm", func(b *testing.B) {
		s := openStore(b, root)
		f := mustFolder(b, mustUser(b, s, "big@x.test"), Inbox)
		mustSync(b, f)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if msgs := mustSync(b, f); len(msgs) != n {
				b.Fatalf("%d messages", len(msgs))
			}
		}
	})
	b.Run("after-flag-change", func(b *testing.B) {
		s := openStore(b, root)
		f := mustFolder(b, mustUser(b, s, "big@x.test"), Inbox)
		msgs := mustSync(b, f)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := f.SetFlags([]UID{msgs[i%n].UID}, FlagsAdd, []Flag{FlagFlagged}); err != nil {
				b.Fatal(err)
			}
			mustSync(b, f)
		}
	})
}
