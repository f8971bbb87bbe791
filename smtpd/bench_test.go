package smtpd

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// BenchmarkDelivery measures messages accepted and durably stored (the
// mailstore fsyncs before smtpd answers 250) per second over real TCP with
// go-smtp's client: 1 and 20 concurrent clients, 4 KB and 100 KB messages,
// one local recipient each, on the MX role.
//
// The 4 KB runs go first: the page cache writeback that 100 KB runs leave
// behind would otherwise still be running during them.
func BenchmarkDelivery(b *testing.B) {
	for _, size := range []int{4 << 10, 100 << 10} {
		for _, clients := range []int{1, 20} {
			b.Run(fmt.Sprintf("clients=%d/size=%dKB", clients, size>>10), func(b *testing.B) {
				benchDelivery(b, clients, size)
			})
		}
	}
}

func benchDelivery(b *testing.B, clients, size int) {
	env := startServer(b, func(o *Options) { o.MaxConnsPerIP = -1 })
	benchSend(b, env.addr, clients, size)
}

// BenchmarkProtocolOnly is the same traffic into a standalone receiver
// whose OnMessage discards the message: smtpd and go-smtp without the
// store, the ceiling the protocol side allows on this machine.
func BenchmarkProtocolOnly(b *testing.B) {
	for _, clients := range []int{1, 20} {
		b.Run(fmt.Sprintf("clients=%d/size=4KB", clients), func(b *testing.B) {
			_, addr := serve(b, Options{
				Hostname: "mx.test", MaxConnsPerIP: -1, Logger: slog.New(slog.DiscardHandler),
				Hooks: Hooks{OnMessage: func(*Message) error { return nil }},
			})
			benchSend(b, addr, clients, 4<<10)
		})
	}
}

// benchSend sends b.N messages of size octets over clients connections
// and reports messages per second.
func benchSend(b *testing.B, addr string, clients, size int) {
	body := benchMessage(size)
	conns := make([]*smtp.Client, clients)
	for i := range conns {
		c, err := smtp.Dial(addr)
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Hello("bench.test"); err != nil {
			b.Fatal(err)
		}
		conns[i] = c
		b.Cleanup(func() { c.Close() })
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	b.SetBytes(int64(size))
	b.ResetTimer()
	start, cpu0 := time.Now(), processCPU()
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				if err := c.SendMail("bench@remote.test", []string{"alice@example.com"}, bytes.NewReader(body)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	// Client and server share the process: CPU per message (user+system)
	// compares two builds on a machine shared with other work better
	// than throughput does.
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N)/1e3, "cpu-µs/op")
}

// processCPU is the user and system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchMessage is a plain message of about size octets.
func benchMessage(size int) []byte {
	var buf bytes.Buffer
	buf.WriteString("From: bench@remote.test\r\nTo: alice@example.com\r\nSubject: bench\r\n\r\n")
	line := strings.Repeat("x", 76) + "\r\n"
	for buf.Len()+len(line) <= size {
		buf.WriteString(line)
	}
	return buf.Bytes()
}

// BenchmarkStoreCommit is the store alone (BeginDelivery, Write, Commit to
// one user) with the same message as BenchmarkDelivery: the floor under
// smtpd's numbers, to tell the protocol's cost from the store's.
func BenchmarkStoreCommit(b *testing.B) {
	for _, writers := range []int{1, 20} {
		b.Run(fmt.Sprintf("writers=%d/size=4KB", writers), func(b *testing.B) {
			env := startServer(b, nil)
			body := benchMessage(4 << 10)
			var next atomic.Int64
			var wg sync.WaitGroup
			errs := make(chan error, writers)
			b.ResetTimer()
			start, cpu0 := time.Now(), processCPU()
			for range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						d, err := env.store.BeginDelivery()
						if err == nil {
							_, err = d.Write(body)
						}
						if err == nil {
							err = d.Commit(env.srv.ctx, []string{"alice@example.com"})
						}
						if err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
			b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N)/1e3, "cpu-µs/op")
		})
	}
}
