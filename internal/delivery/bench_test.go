package delivery

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"
)

// rawSign measures the machine's signing limit: n RSA-2048 PKCS#1 v1.5 SHA-256
// signatures (what every cavage POST costs) spread over GOMAXPROCS goroutines.
func rawSign(b *testing.B, n int) time.Duration {
	key := testPair(b).RSA
	digest := sha256.Sum256([]byte("(request-target): post /inbox"))
	workers := runtime.GOMAXPROCS(0)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				if _, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:]); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	return time.Since(start)
}

// BenchmarkFanOut publishes one activity to 10,000 followers on 1,000 hosts (1,000
// loopback listeners named hNNNN.fanout.test, reached through ClientConfig.Resolve)
// and runs the executor until every inbox answered 2xx. One op is one whole fan-out,
// from Publish (append + enqueue in one transaction) to the last MarkDelivered. It
// reports the ratio to the raw signing limit measured in the same run: "x-raw-1000"
// against 1,000 signatures (the yardstick), "x-raw-same" against as many
// signatures as POSTs.
//
//	go test ./internal/delivery/ -run '^$' -bench FanOut -benchtime 5x -count 1
func BenchmarkFanOut(b *testing.B) {
	const hosts, followers = 1000, 10000
	f := newFediverse(b, hosts, "fanout.test", nil)
	f.readTimeout, f.totalTimeout = 10*time.Second, 30*time.Second
	for _, tc := range []struct {
		name   string
		shared bool
	}{{"shared-inboxes", true}, {"personal-inboxes", false}} {
		b.Run(tc.name, func(b *testing.B) {
			to := f.followers(followers, tc.shared)
			posts := len(Targets(to))
			s, _ := newStore(b)
			e := newExecutor(b, s, f, newClock(), func(cfg *Config) {
				cfg.Now, cfg.Concurrency, cfg.RequestTimeout, cfg.Lease = nil, 32, 30*time.Second, 5*time.Minute
			})
			pub := NewPublisher(s, nil)
			ctx := context.Background()
			raw1000 := rawSign(b, 1000)
			rawSame := rawSign(b, posts)
			i := 0
			var total time.Duration
			b.ResetTimer()
			for b.Loop() {
				start := time.Now()
				a := newActivity(fmt.Sprintf("fanout-%s-%d", tc.name, i), time.Now())
				i++
				if err := pub.Publish(ctx, a, to); err != nil {
					b.Fatal(err)
				}
				before := e.Counts().Delivered
				if _, err := e.RunOnce(ctx); err != nil {
					b.Fatal(err)
				}
				if got := e.Counts().Delivered - before; got != int64(posts) {
					b.Fatalf("delivered %d of %d", got, posts)
				}
				total += time.Since(start)
			}
			per := total / time.Duration(i)
			b.ReportMetric(float64(posts), "posts/op")
			b.ReportMetric(raw1000.Seconds(), "raw-1000-s")
			b.ReportMetric(per.Seconds()/raw1000.Seconds(), "x-raw-1000")
			b.ReportMetric(per.Seconds()/rawSame.Seconds(), "x-raw-same")
		})
	}
}

// BenchmarkRawSign1000 is the signing limit alone: 1,000 RSA-2048 signatures over
// GOMAXPROCS goroutines per op.
func BenchmarkRawSign1000(b *testing.B) {
	testPair(b)
	for b.Loop() {
		rawSign(b, 1000)
	}
}
