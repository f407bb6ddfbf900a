package store

import "testing"

// TestGroupCommitStats checks what the metrics read from the received log: the rows
// waiting for the writer, and batches counted by size, on both engines.
func TestGroupCommitStats(t *testing.T) {
	runSuite(t, map[string]storeTest{
		"pending rows and batch sizes": func(t *testing.T, s Store, _ string) {
			before := s.GroupCommitStats()
			taken, release := holdWriter(s)
			defer release()
			first := recordAsync(s, nil, "https://p/stats/0")
			<-taken // a batch of one is held; the next five wait together
			rest := recordAsync(s, nil, "https://p/stats/1", "https://p/stats/2", "https://p/stats/3", "https://p/stats/4", "https://p/stats/5")
			waitPending(t, s, 5)
			if got := s.GroupCommitStats().Pending; got != 5 {
				t.Errorf("Pending = %d while five rows wait, want 5", got)
			}
			release()
			<-first
			collect(t, rest, 5)
			after := s.GroupCommitStats()
			if after.Pending != 0 {
				t.Errorf("Pending = %d after the commits, want 0", after.Pending)
			}
			if b, r := after.Batches-before.Batches, after.Rows-before.Rows; b != 2 || r != 6 {
				t.Errorf("%d batches of %d rows, want 2 batches of 6 rows", b, r)
			}
			// Buckets are cumulative: the batch of one is in every bucket, the batch of
			// five from the bucket of 8 on.
			for i, le := range GroupCommitBuckets {
				want := int64(1)
				if le >= 5 {
					want = 2
				}
				if got := after.BatchesUpTo[i] - before.BatchesUpTo[i]; got != want {
					t.Errorf("batches of at most %d rows: %d, want %d", le, got, want)
				}
			}
			if last := after.BatchesUpTo[len(GroupCommitBuckets)-1]; last != after.Batches {
				t.Errorf("the last bucket counts %d batches of %d", last, after.Batches)
			}
		},
	})
}
