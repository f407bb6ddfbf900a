package delivery

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fedforge/fedforge/internal/store"
)

// batchMarker is what a queue offers to record many 2xx answers in one transaction
// (store.DeliveredBatches); RemoteQueue, a delivery Job's queue over HTTP, does not.
type batchMarker interface {
	MarkDeliveredBatch(ctx context.Context, marks []store.DeliveredMark) error
}

// deliveredGroup group-commits 2xx answers: the first worker to report one while no
// commit runs becomes the writer; it waits up to linger for more answers (or until max
// are pending), writes them in one transaction, and goes on with every answer that
// arrived meanwhile, a transaction each round; the others wait for the commit of their
// round. A worker returns only once its row is written, as with MarkDelivered, so a
// crash loses no more than before (rows answered but not yet written are sent again: at
// least once). A round holds at most one mark per worker, so it is bounded by the
// executor's concurrency. There is no goroutine of its own: the writer stops when
// nothing is pending.
//
// Without the linger a round was about one mark: answers arrive one by one (each after
// its own signature, about a millisecond of CPU) and a small SQLite commit is shorter
// than that, so each answer found no commit running and paid a transaction alone
// (begin, prepare, commit: 1.6 of the 2.0 s the batches cost in the issue 17 fan-out
// profile). A worker holds its global slot while it waits, which on a fan-out limited
// by signing costs nothing, and on one limited by peers' latency adds at most linger
// to a POST that takes tens of milliseconds.
//
// The linger also ends as soon as no answer can join the round: when every worker that
// holds a global slot has its mark pending (active is 0). Otherwise the last round of
// every RunOnce, and a lone delivery, waited the whole linger for answers that could not
// come.
type deliveredGroup struct {
	q batchMarker
	// linger is how long a writer waits for more answers before a commit (0: none).
	linger time.Duration
	// max pending marks end the linger at once: the executor's concurrency less the
	// writer, the most that can be pending once the writer's own row is written.
	max int

	mu      sync.Mutex
	next    *markRound
	writing bool
	// active counts workers holding a global slot whose answer may still be a 2xx
	// (begin), until they mark (mark) or settle otherwise (end).
	active int
	full   chan struct{} // signalled when next reaches max, or active falls to 0

	rounds, marks atomic.Int64 // committed, for benchmarks and tests
}

// markLinger is the writer's wait for more answers (deliveredGroup.linger).
const markLinger = 5 * time.Millisecond

func newDeliveredGroup(q batchMarker, linger time.Duration, max int) *deliveredGroup {
	return &deliveredGroup{q: q, linger: linger, max: max, full: make(chan struct{}, 1)}
}

// begin counts a worker that took a global slot and may report a 2xx; it is followed
// by exactly one mark or end.
func (g *deliveredGroup) begin() {
	g.mu.Lock()
	g.active++
	g.mu.Unlock()
}

// end is for a worker counted by begin that will not mark (its row was not a 2xx, or
// it stopped): a lingering writer need not wait for it.
func (g *deliveredGroup) end() {
	g.mu.Lock()
	g.active--
	g.wakeLocked()
	g.mu.Unlock()
}

// wakeLocked ends a writer's linger when the pending round is full or no counted
// worker can still add to it. g.mu is held.
func (g *deliveredGroup) wakeLocked() {
	if !g.writing || g.next == nil || (len(g.next.marks) < g.max && g.active > 0) {
		return
	}
	select {
	case g.full <- struct{}{}:
	default:
	}
}

// stats is how many rounds were committed and how many marks they held.
func (g *deliveredGroup) stats() (rounds, marks int64) { return g.rounds.Load(), g.marks.Load() }

// markRound is one transaction's marks and its result.
type markRound struct {
	marks []store.DeliveredMark
	done  chan struct{}
	err   error
}

// mark records one 2xx and returns when its round is committed, or when ctx ends (the
// mark is still written with its round). counted says the caller was counted by begin.
func (g *deliveredGroup) mark(ctx context.Context, m store.DeliveredMark, counted bool) error {
	g.mu.Lock()
	if counted {
		g.active--
	}
	if g.next == nil {
		g.next = &markRound{done: make(chan struct{})}
	}
	r := g.next
	r.marks = append(r.marks, m)
	if g.writing {
		g.wakeLocked()
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
		g.lingerForMore()
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
		g.rounds.Add(1)
		g.marks.Add(int64(len(r.marks)))
		close(r.done)
	}
}

// lingerForMore waits up to linger for the pending round to fill, unless it is full
// or empty already, or no counted worker can still add to it.
func (g *deliveredGroup) lingerForMore() {
	select {
	case <-g.full: // a signal left from an earlier round
	default:
	}
	g.mu.Lock()
	n, active := 0, g.active
	if g.next != nil {
		n = len(g.next.marks)
	}
	g.mu.Unlock()
	if g.linger <= 0 || n == 0 || n >= g.max || active <= 0 {
		return
	}
	t := time.NewTimer(g.linger)
	defer t.Stop()
	select {
	case <-g.full:
	case <-t.C:
	}
}

// markDelivered records a 2xx, retrying the write a few times: until it is written, a
// crash would send the activity to this inbox again. hostUp writes the host's success
// (recordHost left it pending) with the row: in the same round, or after the row when
// the round failed.
func (e *Executor) markDelivered(ctx context.Context, d store.Delivery, at time.Time, hostUp, counted bool) {
	e.delivered.Add(1)
	e.cfg.Metrics.outcome(Delivered)
	var err error
	if e.marks != nil {
		m := store.DeliveredMark{ID: d.ID, At: at}
		if hostUp {
			m.HostUp = d.Host
		}
		if err = e.marks.mark(ctx, m, counted); err == nil || ctx.Err() != nil {
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
