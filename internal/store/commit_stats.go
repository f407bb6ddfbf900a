package store

import "sync/atomic"

// GroupCommits reports on the received log's group commit (received_log.go), so that a
// metrics collector can show the batch sizes a load reaches and the rows waiting for
// the writer without the store importing a metrics library.
type GroupCommits interface {
	// GroupCommitStats returns the counts since the store was opened.
	GroupCommitStats() GroupCommitStats
}

// GroupCommitBuckets are the upper bounds (inclusive) of the batch-size buckets kept by
// GroupCommitStats: powers of two up to the largest batch, maxReceivedBatch.
var GroupCommitBuckets = []int{1, 2, 4, 8, 16, 32, 64, 128}

// GroupCommitStats is a snapshot of the received log's group commit.
type GroupCommitStats struct {
	// Batches is the number of transactions written; Rows the rows they held.
	Batches, Rows int64
	// BatchesUpTo[i] counts the batches of at most GroupCommitBuckets[i] rows
	// (cumulative, as a Prometheus histogram's buckets are).
	BatchesUpTo []int64
	// Pending is the number of rows waiting for the writer now.
	Pending int
}

// batchSizes counts batches per bucket of GroupCommitBuckets (not cumulative).
type batchSizes [8]atomic.Int64

func (b *batchSizes) observe(n int) {
	for i, le := range GroupCommitBuckets {
		if n <= le {
			b[i].Add(1)
			return
		}
	}
	b[len(b)-1].Add(1)
}

// GroupCommitStats implements GroupCommits.
func (s *sqlStore) GroupCommitStats() GroupCommitStats {
	l := s.received
	st := GroupCommitStats{Batches: l.batches.Load(), Rows: l.rows.Load(), Pending: l.pendingLen(), BatchesUpTo: make([]int64, len(GroupCommitBuckets))}
	var sum int64
	for i := range GroupCommitBuckets {
		sum += l.sizes[i].Load()
		st.BatchesUpTo[i] = sum
	}
	return st
}
