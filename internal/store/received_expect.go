package store

import (
	"context"
	"sync/atomic"
)

// ReceivedExpectations lets the inbox tell the received log's group commit
// (received_log.go) how many rows are on their way, so that its writer waits for them
// rather than guessing. Issue 17: with the writer guessing from the scheduler, two
// thirds of the transactions under the inbox load held a single row (3.2-4.4 rows a
// transaction on average with 16 connections), and the commit was the largest part of
// a POST's CPU after the verify. An expectation only shapes batches: an acknowledged
// row is still one whose transaction committed.
type ReceivedExpectations interface {
	// ExpectReceived announces that the request behind ctx is likely to call
	// RecordReceived soon. RecordReceived called with the returned context withdraws
	// the announcement once its row is queued; release withdraws it if that has not
	// happened (call it, deferred, when the request ends). While announced rows are on
	// their way, the writer waits for them, at most receivedBatchLingerExpected, before
	// it starts a transaction.
	ExpectReceived(ctx context.Context) (context.Context, func())
}

// expectation is one announced row; withdraw is idempotent.
type expectation struct {
	l         *receivedLog
	withdrawn atomic.Bool
}

type expectationKey struct{}

// ExpectReceived implements ReceivedExpectations.
func (s *sqlStore) ExpectReceived(ctx context.Context) (context.Context, func()) {
	l := s.received
	if l == nil {
		return ctx, func() {}
	}
	l.hinted.Store(true)
	l.expected.Add(1)
	e := &expectation{l: l}
	return context.WithValue(ctx, expectationKey{}, e), e.withdraw
}

// withdraw removes the announcement; the last one withdrawn wakes a lingering writer.
func (e *expectation) withdraw() {
	if e.withdrawn.CompareAndSwap(false, true) && e.l.expected.Add(-1) == 0 {
		e.l.signal()
	}
}

// withdrawExpectation withdraws the announcement ctx carries, if any (RecordReceived,
// after queueing its row).
func withdrawExpectation(ctx context.Context) {
	if e, ok := ctx.Value(expectationKey{}).(*expectation); ok {
		e.withdraw()
	}
}
