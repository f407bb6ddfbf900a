package store

import (
	"context"
	"testing"
	"time"
)

func TestDeliveredBatchConformance(t *testing.T) {
	ctx := context.Background()
	runSuite(t, map[string]storeTest{
		"a batch of 2xx answers is recorded in one call, idempotently": func(t *testing.T, s Store, _ string) {
			a := activity("https://h/a", 1, Public)
			mustAppend(t, s, a, targets(300, 30)...)
			ds := lease(t, s, t0, "w1", 300)
			if len(ds) != 300 {
				t.Fatalf("leased %d, want 300", len(ds))
			}
			var marks []DeliveredMark
			for _, d := range ds[:250] {
				marks = append(marks, DeliveredMark{ID: d.ID, At: t0})
			}
			// A row answered twice in one batch, and a row that does not exist.
			marks = append(marks, DeliveredMark{ID: ds[0].ID, At: t0}, DeliveredMark{ID: 1 << 40, At: t0})
			if err := s.MarkDeliveredBatch(ctx, marks); err != nil {
				t.Fatalf("MarkDeliveredBatch: %v", err)
			}
			if n, err := s.PendingDeliveries(ctx, a.ID); err != nil || n != 50 {
				t.Errorf("PendingDeliveries after 250 2xx = %d, %v; want 50", n, err)
			}
			st, err := s.QueueStats(ctx, t0)
			if err != nil || st.Delivered != 250 || st.Pending != 50 {
				t.Errorf("QueueStats = %+v, %v; want 250 delivered, 50 pending", st, err)
			}
			// Again, later: idempotent, and the first finish time is kept.
			for i := range marks {
				marks[i].At = t0.Add(2 * time.Hour)
			}
			if err := s.MarkDeliveredBatch(ctx, marks); err != nil {
				t.Fatalf("MarkDeliveredBatch again: %v", err)
			}
			// Only the 50 unanswered rows come back once the lease has run out.
			again := lease(t, s, t0.Add(2*time.Minute), "w2", 300)
			if len(again) != 50 {
				t.Errorf("leased %d after the lease ran out, want the 50 unanswered", len(again))
			}
			if n, err := s.PruneDeliveries(ctx, t0.Add(time.Hour)); err != nil || n != 250 {
				t.Errorf("PruneDeliveries(t0+1h) = %d, %v; want the 250 finished at t0", n, err)
			}
			if err := s.MarkDeliveredBatch(ctx, nil); err != nil {
				t.Errorf("empty batch: %v", err)
			}
		},
		"a mark naming its host resets the host's failures in the same transaction": func(t *testing.T, s Store, _ string) {
			a := activity("https://h/a", 1, Public)
			mustAppend(t, s, a, targets(4, 2)...) // h0.example and h1.example, two rows each
			ds := lease(t, s, t0, "w1", 4)
			for _, h := range []string{"h0.example", "h1.example"} {
				for day := range 2 {
					if _, err := s.RecordHostFailure(ctx, h, t0.Add(time.Duration(day)*24*time.Hour), 2); err != nil {
						t.Fatal(err)
					}
				}
			}
			if list, err := s.ListUnavailableHosts(ctx); err != nil || len(list) != 2 {
				t.Fatalf("unavailable hosts before = %v, %v; want both", list, err)
			}
			var marks []DeliveredMark
			for _, d := range ds {
				m := DeliveredMark{ID: d.ID, At: t0.Add(72 * time.Hour)}
				if d.Host == "h0.example" {
					m.HostUp = d.Host // named twice: reset once
				}
				marks = append(marks, m)
			}
			if err := s.MarkDeliveredBatch(ctx, marks); err != nil {
				t.Fatalf("MarkDeliveredBatch: %v", err)
			}
			list, err := s.ListUnavailableHosts(ctx)
			if err != nil || len(list) != 1 || list[0].Host != "h1.example" {
				t.Errorf("unavailable hosts after = %v, %v; want only h1.example, whose marks named no host", list, err)
			}
			st, err := s.RecordHostFailure(ctx, "h0.example", t0.Add(96*time.Hour), 2)
			if err != nil || st.ConsecutiveFailures != 1 || st.FailureDays != 1 || st.Unavailable {
				t.Errorf("h0.example's next failure = %+v, %v; want counted from zero", st, err)
			}
			if n, err := s.PendingDeliveries(ctx, a.ID); err != nil || n != 0 {
				t.Errorf("PendingDeliveries = %d, %v; want 0", n, err)
			}
		},
	})
}
