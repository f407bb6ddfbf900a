package store

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// bulkOutbox fills one actor's outbox with n activities inside the engine (a
// recursive CTE on SQLite, generate_series on PostgreSQL), which takes seconds for a
// million rows where row-by-row inserts would take minutes, and sets the counter.
func bulkOutbox(b *testing.B, s *sqlStore, actor string, n int) {
	b.Helper()
	ctx := context.Background()
	start := time.Now()
	series := `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?) `
	from := `FROM c`
	if s.eng == enginePostgres {
		series, from = ``, `FROM generate_series(1, ?::bigint) AS c(x)`
	}
	// Published times advance a second per item; every seventh is followers-only,
	// as a real actor's mix would be.
	q := series + `INSERT INTO activities (id, actor_id, type, object_id, visibility, published, raw)
		SELECT ? || '/activities/' || x, ?, 'Create', ? || '/objects/' || x,
			CASE WHEN x % 7 = 0 THEN 'followers' ELSE 'public' END,
			? + x * 1000000, ? ` + from
	raw := []byte(`{"type":"Create","object":{"type":"Note","content":"release v1.2.3 of the project"}}`)
	err := s.inTx(ctx, func(t tx) error {
		var err error
		if s.eng == enginePostgres {
			_, err = t.exec(ctx, q, actor, actor, actor, micros(t0), raw, n)
		} else {
			_, err = t.exec(ctx, q, n, actor, actor, actor, micros(t0), raw)
		}
		if err != nil {
			return err
		}
		_, err = t.exec(ctx, `INSERT INTO outbox_counts (actor_id, visibility, n) VALUES (?, 'public', ?)`, actor, n-n/7)
		return err
	})
	if err != nil {
		b.Fatalf("bulk insert %d: %v", n, err)
	}
	// On PostgreSQL, VACUUM as well: it sets hint bits and the visibility map now,
	// as a long-lived table would have them, instead of autovacuum doing it on the
	// two shared cores while the pages are measured.
	maintain := `ANALYZE`
	if s.eng == enginePostgres {
		maintain = `VACUUM ANALYZE activities`
	}
	if _, err := s.w.ExecContext(ctx, maintain); err != nil {
		b.Fatalf("analyze: %v", err)
	}
	b.Logf("%s: bulk-inserted %d outbox rows in %s", engineName(s.eng), n, time.Since(start).Round(time.Millisecond))
}

func engineName(e engine) string {
	if e == enginePostgres {
		return "postgres"
	}
	return "sqlite"
}

// BenchmarkOutboxPage measures one 20-item outbox page at the top ("first") and at
// the bottom ("deep") of outboxes of 1,000 and 1,000,000 items. Keyset pagination
// should make all four figures close.
func BenchmarkOutboxPage(b *testing.B) {
	ctx := context.Background()
	for _, e := range engines(b) {
		b.Run(e.name, func(b *testing.B) {
			for _, n := range []int{1_000, 1_000_000} {
				b.Run(fmt.Sprintf("items=%d", n), func(b *testing.B) {
					s := openTest(b, e.dsn(b)).(*sqlStore)
					const actor = "https://forge.example/actors/releases"
					bulkOutbox(b, s, actor, n)
					// The cursor of the second-to-last page: as deep as a reader can go.
					var pub, seq int64
					if err := s.r.QueryRowContext(ctx, s.q(`SELECT published, seq FROM activities
						WHERE actor_id = ? ORDER BY published, seq LIMIT 1 OFFSET 40`), actor).Scan(&pub, &seq); err != nil {
						b.Fatal(err)
					}
					cursors := map[string]string{"first": "", "deep": encodeCursor(pub, seq)}
					for _, name := range []string{"first", "deep"} {
						b.Run(name, func(b *testing.B) {
							q := OutboxQuery{ActorID: actor, Cursor: cursors[name], Limit: 20}
							for b.Loop() {
								p, err := s.ListOutbox(ctx, q)
								if err != nil || len(p.Items) != 20 {
									b.Fatalf("page: %d items, %v", len(p.Items), err)
								}
							}
						})
					}
					b.Run("count", func(b *testing.B) {
						for b.Loop() {
							if _, err := s.CountOutbox(ctx, actor); err != nil {
								b.Fatal(err)
							}
						}
					})
				})
			}
		})
	}
}

// BenchmarkEnqueue10k measures one transaction enqueuing 10,000 deliveries (one
// activity to 10,000 shared inboxes on 1,000 hosts).
func BenchmarkEnqueue10k(b *testing.B) {
	ctx := context.Background()
	ts := targets(10_000, 1_000)
	for _, e := range engines(b) {
		b.Run(e.name, func(b *testing.B) {
			s := openTest(b, e.dsn(b))
			i := 0
			for b.Loop() {
				i++
				a := activity("https://forge.example/actors/a", i, Public)
				mustAppendB(b, s, a)
				if n, err := s.EnqueueDeliveries(ctx, a.ID, ts, t0); err != nil || n != len(ts) {
					b.Fatalf("enqueue: %d, %v", n, err)
				}
			}
			b.ReportMetric(float64(len(ts)*b.N)/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}

// BenchmarkLease measures leasing batches of 100 due deliveries ("lease") and the
// executor's full bookkeeping, lease plus one MarkDelivered per row ("lease+mark").
func BenchmarkLease(b *testing.B) {
	ctx := context.Background()
	for _, e := range engines(b) {
		b.Run(e.name, func(b *testing.B) {
			for _, mark := range []bool{false, true} {
				name := "lease"
				if mark {
					name = "lease+mark"
				}
				b.Run(name, func(b *testing.B) {
					s := openTest(b, e.dsn(b))
					act := 0
					refill := func() {
						act++
						a := activity("https://forge.example/actors/a", act, Public)
						mustAppendB(b, s, a)
						if _, err := s.EnqueueDeliveries(ctx, a.ID, targets(10_000, 1_000), t0); err != nil {
							b.Fatal(err)
						}
					}
					refill()
					rows := 0
					for b.Loop() {
						ds, err := s.LeaseDeliveries(ctx, LeaseRequest{Now: t0, Limit: 100, Lease: time.Hour, Owner: "bench"})
						if err != nil {
							b.Fatal(err)
						}
						if len(ds) == 0 {
							b.StopTimer()
							refill()
							b.StartTimer()
							continue
						}
						rows += len(ds)
						if mark {
							for _, d := range ds {
								if err := s.MarkDelivered(ctx, d.ID, t0); err != nil {
									b.Fatal(err)
								}
							}
						}
					}
					b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
				})
			}
		})
	}
}

func mustAppendB(b *testing.B, s Store, a Activity) {
	b.Helper()
	if created, err := s.AppendActivity(context.Background(), a, nil); err != nil || !created {
		b.Fatalf("AppendActivity(%s) = %v, %v", a.ID, created, err)
	}
}

// BenchmarkRecordReceived measures the inbox's durable write: concurrent
// RecordReceived calls, each a new activity of a realistic size, with no recipient (a
// public post nobody here follows) or one. 16 callers are the inbox load test's
// connections; 128 fill a batch without waiting. It reports rows/s, the process's CPU
// per row (on PostgreSQL without the server's) and the rows per transaction.
func BenchmarkRecordReceived(b *testing.B) {
	ctx := context.Background()
	raw := json.RawMessage(`{"@context":"https://www.w3.org/ns/activitystreams","id":"https://peer.example/notes/1/activity","type":"Create","actor":"https://peer.example/users/watcher","to":["https://www.w3.org/ns/activitystreams#Public"],"object":{"id":"https://peer.example/notes/1","type":"Note","content":"a note of a realistic length for the benchmark","attributedTo":"https://peer.example/users/watcher"}}`)
	for _, e := range engines(b) {
		for _, callers := range []int{16, 128} {
			for _, nrcpt := range []int{0, 1} {
				b.Run(fmt.Sprintf("%s/callers=%d/recipients=%d", e.name, callers, nrcpt), func(b *testing.B) {
					s := openTest(b, e.dsn(b))
					var recipients []string
					if nrcpt > 0 {
						recipients = []string{"https://forge.example/actors/releases"}
					}
					var next atomic.Int64
					cpu0 := processCPU(b)
					b.SetParallelism(max(1, callers/runtime.GOMAXPROCS(0)))
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							id := fmt.Sprintf("https://peer.example/notes/%d/activity", next.Add(1))
							isNew, err := s.RecordReceived(ctx, Received{ID: id, ActorID: "https://peer.example/users/watcher", Type: "Create", ReceivedAt: t0, Raw: raw}, recipients)
							if err != nil || !isNew {
								b.Errorf("RecordReceived(%s) = %v, %v", id, isNew, err)
								return
							}
						}
					})
					b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
					b.ReportMetric(float64(processCPU(b)-cpu0)/float64(time.Microsecond)/float64(b.N), "cpu-µs/row")
					l := s.(*sqlStore).received
					b.ReportMetric(float64(l.rows.Load())/float64(max(l.batches.Load(), 1)), "rows/batch")
				})
			}
		}
	}
}

// processCPU is the user+system CPU time of the benchmark process (every thread; on
// PostgreSQL the server's own CPU is not included).
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
