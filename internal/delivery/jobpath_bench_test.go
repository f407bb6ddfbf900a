package delivery

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver, to make the benchmark's schema
)

// BenchmarkJobPath compares the two ways a delivery Job can reach a PostgreSQL-backed
// server's queue (issue 15, docs/decisions.md "Delivery Jobs on PostgreSQL"): through a
// replica's queue endpoint (QueueHandler over HTTP with its token, what the operator's
// Jobs use today) or straight from PostgreSQL (JobOptions.StoreDSN). One op publishes one
// activity to 2,000 followers (personal inboxes on 100 loopback hosts) and runs `jobs`
// RunJob calls side by side, as that many Job pods would, until every POST is answered.
// It reports deliveries/s, this process's CPU per delivery (the Jobs, the queue endpoint
// and the inboxes; PostgreSQL's own processes are not in it, and they run the same SQL on
// both paths) and the queue endpoint's requests per delivery.
//
//	FEDFORGE_TEST_POSTGRES_DSN="$(hack/test-postgres.sh)" \
//	  go test ./internal/delivery/ -run '^$' -bench JobPath -benchtime 3x -count 1
func BenchmarkJobPath(b *testing.B) {
	base := os.Getenv("FEDFORGE_TEST_POSTGRES_DSN")
	if base == "" {
		b.Fatal("FEDFORGE_TEST_POSTGRES_DSN is not set: export FEDFORGE_TEST_POSTGRES_DSN=\"$(hack/test-postgres.sh)\"")
	}
	const hosts, followers = 100, 2000
	defer func(d time.Duration) { peerIdleTimeout = d }(peerIdleTimeout)
	peerIdleTimeout = 5 * time.Second
	f := newFediverse(b, hosts, "jobpath.test", nil)
	f.readTimeout, f.totalTimeout = 10*time.Second, 30*time.Second // a busy machine's slow answer is not a failure
	keysDir := filepath.Join(b.TempDir(), "keys")
	writeKeyDir(b, filepath.Join(keysDir, "releases"))
	for _, jobs := range []int{1, 4} {
		for _, path := range []string{"queue-endpoint", "postgres-direct"} {
			b.Run(fmt.Sprintf("%s/jobs=%d", path, jobs), func(b *testing.B) {
				dsn := benchSchema(b, base)
				s := openStore(b, dsn)
				var calls atomic.Int64
				o := JobOptions{KeysDir: keysDir, Actors: []JobActor{{ID: testActorID, Dir: "releases"}},
					Client: f.clientConfig(), MaxDuration: 5 * time.Minute,
					Log: funcr.New(func(prefix, args string) {
						if os.Getenv("JOBPATH_DEBUG") != "" {
							fmt.Println(prefix, args)
						}
					}, funcr.Options{Verbosity: 1})}
				if path == "queue-endpoint" {
					mux := http.NewServeMux()
					mux.Handle(QueuePath+"/", http.StripPrefix(QueuePath, QueueHandler(s, testToken)))
					srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						calls.Add(1)
						mux.ServeHTTP(w, r)
					}))
					b.Cleanup(srv.Close)
					o.QueueURL, o.Token = srv.URL+QueuePath, testToken
				} else {
					o.StoreDSN = dsn
				}
				pub := NewPublisher(s, nil)
				ctx := context.Background()
				var (
					elapsed, cpu time.Duration
					delivered    int64
					retried      int64
					i            int
				)
				for b.Loop() {
					a := newActivity(fmt.Sprintf("jobpath-%s-%d-%d", path, jobs, i), time.Now())
					i++
					if err := pub.Publish(ctx, a, f.followers(followers, false)); err != nil {
						b.Fatal(err)
					}
					cpu0, start := processCPU(), time.Now()
					var (
						wg  sync.WaitGroup
						mu  sync.Mutex
						got int64
						all Counts
					)
					run := func(now func() time.Time) {
						for j := range jobs {
							wg.Add(1)
							go func() {
								defer wg.Done()
								jo := o
								jo.Owner, jo.Now = fmt.Sprintf("job-%d", j), now
								res, err := RunJob(ctx, jo)
								if err != nil {
									b.Error(err)
								}
								mu.Lock()
								got += res.Delivered
								all.Retried += res.Retried
								all.HeldBack += res.HeldBack
								all.GivenUp += res.GivenUp
								mu.Unlock()
							}()
						}
						wg.Wait()
					}
					run(nil)
					if got < followers {
						// A POST that failed (a loopback connection closed as it was
						// reused, on a loaded machine) is retried later: the same Jobs
						// run again an hour on, as the next Jobs would.
						run(func() time.Time { return time.Now().Add(time.Hour) })
					}
					retried += all.Retried
					elapsed += time.Since(start)
					cpu += processCPU() - cpu0
					if got != followers {
						b.Fatalf("delivered %d of %d (retried %d, held back %d, given up %d)", got, followers, all.Retried, all.HeldBack, all.GivenUp)
					}
					delivered += got
				}
				b.ReportMetric(float64(delivered)/elapsed.Seconds(), "deliveries/s")
				b.ReportMetric(float64(cpu.Microseconds())/float64(delivered), "cpu-µs/delivery")
				b.ReportMetric(float64(calls.Load())/float64(delivered), "queue-requests/delivery")
				b.ReportMetric(float64(retried)/float64(i), "retried/op")
			})
		}
	}
}

// benchSchema makes a schema of its own in the PostgreSQL at base
// (FEDFORGE_TEST_POSTGRES_DSN, from hack/test-postgres.sh), dropped afterwards, and returns
// a DSN that uses it.
func benchSchema(b *testing.B, base string) string {
	admin, err := sql.Open("pgx", base)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { admin.Close() })
	r := make([]byte, 6)
	_, _ = rand.Read(r)
	schema := "jobpath_" + hex.EncodeToString(r)
	if _, err := admin.ExecContext(context.Background(), `CREATE SCHEMA `+schema); err != nil {
		b.Fatalf("create schema (is hack/test-postgres.sh running?): %v", err)
	}
	b.Cleanup(func() { _, _ = admin.ExecContext(context.Background(), `DROP SCHEMA `+schema+` CASCADE`) })
	u, err := url.Parse(base)
	if err != nil {
		b.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
