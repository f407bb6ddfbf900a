package delivery

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fedforge/fedforge/internal/store"
)

// processCPU is this process's CPU time (user+system, every thread): the fan-out's and
// the raw signing's CPU compare even when other work on the machine stretches wall time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchStore opens the fan-out's store: SQLite in a temporary directory, or with
// engine "postgres" a throwaway schema of FEDFORGE_TEST_POSTGRES_DSN's database
// (hack/test-postgres.sh), dropped at the end.
func benchStore(b *testing.B, engine string) store.Store {
	if engine == "sqlite" {
		return openStore(b, "sqlite://"+filepath.Join(b.TempDir(), "fedforge.db"))
	}
	return openStore(b, benchSchema(b, os.Getenv("FEDFORGE_TEST_POSTGRES_DSN")))
}

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
// from Publish (append + enqueue in one transaction) to the last MarkDelivered.
//
// The yardstick is the machine's signing limit: as many raw RSA-2048 signatures as the
// fan-out sends POSTs, on GOMAXPROCS goroutines, measured in the same process right
// before each fan-out (it moves by 10-40 % between two measurements a second apart on a
// shared virtual machine, so each fan-out gets its own). Each op gives a pair, and the
// case reports the median of the pairs' ratios with their range: "x-raw" in wall time,
// "cpu-x-raw" in this process's CPU time (which moves less with the machine's load; a
// PostgreSQL server's own CPU does not count), "x-raw-min"/"x-raw-max" and
// "cpu-x-raw-min"/"cpu-x-raw-max"; "x-raw-1000" is the median wall time against 1,000
// signatures (the wording for the shared-inbox case, which sends 1,000 POSTs).
// Run with -benchtime 5x or more for a median worth reading.
//
// With FEDFORGE_TEST_POSTGRES_DSN set, each case also runs on PostgreSQL. The
// personal-inbox case runs three times: with the 2xx answers group-committed (as the
// executor does), with one transaction per answer (as before issue 17), and with peers
// that keep idle connections 5 s ("personal-inboxes-keepalive"). The peers of the other
// in-process cases close a connection idle for 400 ms (peerIdleTimeout, for the tests'
// exact-once assertions), shorter than the time a fan-out takes to come back to the same
// host (one POST in 1,000 goes to each host), so there every POST opens a new
// connection. The "-peers-apart" cases run the peers in a process of their own:
// "cpu-x-raw" is then the fan-out's CPU alone, and "peers-cpu-x-raw" the peers' (both on
// the same cores, so wall time counts both). Every case but "-warm" closes the client's
// connections between two fan-outs, so that each fan-out dials every host (a first
// contact); "-warm" keeps the connections of the fan-out before it (an unmeasured one first),
// as a server fanning out to the same hosts within its transport's 90 s idle timeout
// does against peers that keep connections open (nginx 75 s, Puma 20 s).
//
//	go test ./internal/delivery/ -run '^$' -bench FanOut -benchtime 5x -count 1
func BenchmarkFanOut(b *testing.B) {
	const hosts, followers = 1000, 10000
	f := newFediverse(b, hosts, "fanout.test", nil)
	f.readTimeout, f.totalTimeout = 10*time.Second, 30*time.Second
	engines := []string{"sqlite"}
	if os.Getenv("FEDFORGE_TEST_POSTGRES_DSN") != "" {
		engines = append(engines, "postgres")
	}
	for _, engine := range engines {
		for _, tc := range []fanOutCase{
			{name: "shared-inboxes", shared: true},
			{name: "personal-inboxes"},
			{name: "personal-inboxes-per-row-marks", perRow: true},
		} {
			benchFanOut(b, f, engine, tc, followers)
		}
	}
	if wants("keepalive") {
		f.setIdle(b, 5*time.Second)
		for _, engine := range engines {
			benchFanOut(b, f, engine, fanOutCase{name: "personal-inboxes-keepalive"}, followers)
		}
		f.setIdle(b, 0)
	}
	if wants("peers-apart") {
		// The same peers (keeping idle connections 5 s) in a process of their own, so
		// that this process's CPU is the fan-out's alone ("cpu-x-raw"); the peers' is
		// reported beside it ("peers-cpu-x-raw").
		fa := peersApart(b, hosts, "fanout.test", 5*time.Second)
		fa.readTimeout, fa.totalTimeout = f.readTimeout, f.totalTimeout
		for _, engine := range engines {
			for _, tc := range []fanOutCase{
				{name: "shared-inboxes-peers-apart", shared: true},
				{name: "shared-inboxes-peers-apart-warm", shared: true, warm: true},
				{name: "personal-inboxes-peers-apart"},
			} {
				benchFanOut(b, fa, engine, tc, followers)
			}
		}
	}
}

// fanOutCase is one case of BenchmarkFanOut. perRow turns off the group commit of 2xx
// answers (delivered.go), one MarkDelivered transaction per answer as before issue 17.
// Unless warm, the client's idle connections are closed before each fan-out, so that it
// dials every host (peers that keep connections would otherwise be reached again on
// them); warm runs one unmeasured fan-out first, so that every measured one finds the
// connections of the one before.
type fanOutCase struct {
	name                 string
	shared, perRow, warm bool
}

// wants reports whether -test.bench may select a case whose name holds part: it names
// part, or selects no sub-benchmark in particular. Otherwise the case's setup (restarting
// or starting 1,000 peers) is skipped.
func wants(part string) bool {
	fl := flag.Lookup("test.bench")
	return fl == nil || strings.Contains(fl.Value.String(), part) || !strings.Contains(fl.Value.String(), "/")
}

// benchFanOut runs one case: per op, the raw signatures right before, then the fan-out.
func benchFanOut(b *testing.B, f *fediverse, engine string, tc fanOutCase, followers int) {
	b.Run(engine+"/"+tc.name, func(b *testing.B) {
		to := f.followers(followers, tc.shared)
		posts := len(Targets(to))
		s := benchStore(b, engine)
		e := newExecutor(b, s, f, newClock(), func(cfg *Config) {
			cfg.Now, cfg.Concurrency, cfg.RequestTimeout, cfg.Lease = nil, 32, 30*time.Second, 5*time.Minute
		})
		if tc.perRow {
			e.marks = nil
		}
		transport := e.cfg.Client.Guard().Transport()
		// Each case ends with its connections closed, so that the peers' closing of them
		// does not fall into the next case's yardstick.
		b.Cleanup(func() {
			transport.CloseIdleConnections()
			time.Sleep(100 * time.Millisecond)
		})
		pub := NewPublisher(s, nil)
		ctx := context.Background()
		i := 0
		fanOut := func() {
			a := newActivity(fmt.Sprintf("fanout-%s-%s-%d", engine, tc.name, i), time.Now())
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
		}
		if tc.warm {
			fanOut()
		}
		// Unless warm, every fan-out dials every host: the connections of the one before are
		// closed first (the peers' side reads the EOFs before the yardstick starts).
		settle := func() {
			if !tc.warm {
				transport.CloseIdleConnections()
				time.Sleep(100 * time.Millisecond)
			}
		}
		var wall, cpu, peers []float64
		var raw1000 float64
		conns0 := f.conns()
		b.ResetTimer()
		for b.Loop() {
			b.StopTimer()
			settle()
			cpu0 := processCPU()
			raw := rawSign(b, posts)
			rawCPU := processCPU() - cpu0
			b.StartTimer()
			start, startCPU := time.Now(), processCPU()
			var peers0 time.Duration
			if f.cpu != nil {
				peers0 = f.cpu()
			}
			fanOut()
			took, tookCPU := time.Since(start), processCPU()-startCPU
			wall = append(wall, took.Seconds()/raw.Seconds())
			cpu = append(cpu, tookCPU.Seconds()/rawCPU.Seconds())
			raw1000 = raw.Seconds() * 1000 / float64(posts)
			if f.cpu != nil {
				peers = append(peers, (f.cpu()-peers0).Seconds()/rawCPU.Seconds())
			}
		}
		b.StopTimer()
		b.ReportMetric(float64(posts), "posts/op")
		if f.cpu == nil { // peers apart count their connections in their own process
			b.ReportMetric(float64(f.conns()-conns0)/float64(len(wall)), "conns/op")
		}
		b.ReportMetric(raw1000, "raw-1000-s")
		b.ReportMetric(median(wall)*float64(posts)/1000, "x-raw-1000")
		reportSpread(b, wall, "x-raw")
		reportSpread(b, cpu, "cpu-x-raw")
		if f.cpu != nil {
			b.ReportMetric(median(peers), "peers-cpu-x-raw")
		}
		// Marks per group-committed round, where the executor counts them.
		if g, ok := any(e.marks).(interface{ stats() (int64, int64) }); ok && e.marks != nil {
			if rounds, marks := g.stats(); rounds > 0 {
				b.ReportMetric(float64(marks)/float64(rounds), "marks/round")
			}
		}
	})
}

// reportSpread reports the median of ratios as unit, and their range as unit-min and
// unit-max.
func reportSpread(b *testing.B, ratios []float64, unit string) {
	b.ReportMetric(median(ratios), unit)
	b.ReportMetric(slices.Min(ratios), unit+"-min")
	b.ReportMetric(slices.Max(ratios), unit+"-max")
}

// median is the middle of xs (the mean of the two middle ones for an even count).
func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// BenchmarkRawSign1000 is the signing limit alone: 1,000 RSA-2048 signatures over
// GOMAXPROCS goroutines per op.
func BenchmarkRawSign1000(b *testing.B) {
	testPair(b)
	for b.Loop() {
		rawSign(b, 1000)
	}
}
