package delivery

import (
	"context"
	"sync"
	"time"

	"github.com/fedforge/fedforge/internal/store"
)

// batchMarker is what a queue offers to record many 2xx answers in one transaction
// (store.DeliveredBatches); RemoteQueue, a delivery Job's queue over HTTP, does not.
type batchMarker interface {
	MarkDeliveredBatch(ctx context.Context, marks []store.DeliveredMark) error
}

// deliveredGroup group-commits 2xx answers: the first worker to report one while no
// commit runs writes it, and then every answer that arrived meanwhile, in one
// transaction each round; the others wait for the commit of their round. A worker
// returns only once its row is written, as with MarkDelivered, so a crash loses no more
// than before (rows answered but not yet written are sent again: at least once). A
// round holds at most one mark per worker, so it is bounded by the executor's
// concurrency. There is no goroutine of its own: the committing worker stops when
// nothing is pending.
type deliveredGroup struct {
	q batchMarker

	mu      sync.Mutex
	next    *markRound
	writing bool
}

// markRound is one transaction's marks and its result.
type markRound struct {
	marks []store.DeliveredMark
	done  chan struct{}
	err   error
}

// mark records one 2xx and returns when its round is committed, or when ctx ends (the
// mark is still written with its round).
func (g *deliveredGroup) mark(ctx context.Context, m store.DeliveredMark) error {
	g.mu.Lock()
	if g.next == nil {
		g.next = &markRound{done: make(chan struct{})}
	}
	r := g.next
	r.marks = append(r.marks, m)
	if g.writing {
		g.mu.Unlock()
		select {
		case <-r.done:
			return r.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	g.writing = true
	g.mu.Unlock()
	g.commitAll(ctx)
	return r.err // r was the first round commitAll wrote
}

// commitAll writes rounds until none is pending, then gives up the writer's role.
func (g *deliveredGroup) commitAll(ctx context.Context) {
	ctx = context.WithoutCancel(ctx)
	for {
		g.mu.Lock()
		r := g.next
		g.next = nil
		if r == nil {
			g.writing = false
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		r.err = g.q.MarkDeliveredBatch(cctx, r.marks)
		cancel()
		close(r.done)
	}
}

// markDelivered records a 2xx, retrying the write a few times: until it is written, a
// crash would send the activity to this inbox again. hostUp writes the host's success
// (recordHost left it pending) with the row: in the same round, or after the row when
// the round failed.
func (e *Executor) markDelivered(ctx context.Context, d store.Delivery, at time.Time, hostUp bool) {
	e.delivered.Add(1)
	e.cfg.Metrics.outcome(Delivered)
	var err error
	if e.marks != nil {
		m := store.DeliveredMark{ID: d.ID, At: at}
		if hostUp {
			m.HostUp = d.Host
		}
		if err = e.marks.mark(ctx, m); err == nil || ctx.Err() != nil {
			if err != nil {
				e.reportError(err, d, "marking delivery delivered (it will be sent again)")
			}
			return
		}
		// The batch failed as a whole: write this row on its own, as without batches.
	}
	for i := range 3 {
		if err = e.cfg.Queue.MarkDelivered(ctx, d.ID, at); err == nil || ctx.Err() != nil {
			break
		}
		time.Sleep(time.Duration(100*(i+1)) * time.Millisecond)
	}
	if err != nil {
		e.reportError(err, d, "marking delivery delivered (it will be sent again)")
	}
	if hostUp {
		if err := e.cfg.Queue.RecordHostSuccess(ctx, d.Host, at); err != nil {
			e.log.Error(err, "recording host success", "host", d.Host)
		}
	}
}
