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
	})
}
