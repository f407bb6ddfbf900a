package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrClosed is returned to a RecordReceived that was still waiting for its group
// commit when the store was closed: its row was not written, and the caller must not
// acknowledge the activity.
var ErrClosed = errors.New("store: closed")

// Bounds of one group commit of the received log. A batch is what is waiting when the
// writer is free (after a batch of several rows, what arrives within
// receivedBatchLinger; see fill), up to maxReceivedBatch rows and
// maxReceivedBatchBytes of raw bodies; the rest waits for the next transaction. The
// row bound keeps statements well under both engines' parameter limits (5 per row);
// the byte bound keeps one transaction's WAL growth modest when peers send large
// documents (the inbox accepts up to 1 MiB each).
const (
	maxReceivedBatch      = 128
	maxReceivedBatchBytes = 4 << 20
	// receivedBatchLinger is the longest a row waits for more rows to share its
	// transaction, when the writer lingers. 200 µs is far below what a peer notices
	// (its delivery takes milliseconds) and, in the inbox load test, gave the best
	// throughput: 1 ms saved no more CPU and held the 16 connections back.
	receivedBatchLinger = 200 * time.Microsecond
	// receivedBatchLingerExpected is the longest a row waits for more rows to share its
	// transaction once the inbox announces its rows (ExpectReceived). Under load the
	// writer waits this long for the requests not yet announced; when the last announced
	// row is queued and nothing else runs it stops at once (see fill).
	receivedBatchLingerExpected = 500 * time.Microsecond
	// receivedBatchTimeout bounds one batch transaction, so that a hung database
	// connection fails the waiters (their peers retry) instead of holding them for
	// ever; the request contexts bound each waiter too.
	receivedBatchTimeout = 30 * time.Second
	// maxRecipientRows bounds one multi-row insert of received_recipients.
	maxRecipientRows = 500
)

// receivedRequest is one RecordReceived waiting for its group commit.
type receivedRequest struct {
	r          Received
	at         int64 // ReceivedAt in stored form
	recipients []string

	// Set by the writer before done is closed.
	isNew bool
	err   error
	done  chan struct{}
}

// receivedLog group-commits the received log. RecordReceived is the inbox's durable
// write before its 202 and is called by every inbox request; one transaction per
// call serialised on SQLite's single writer and paid a commit per activity. Instead,
// callers queue their row and wait; one writer goroutine takes every row waiting at
// that moment, writes them in one transaction with multi-row statements, and wakes
// each caller with its own outcome only after the commit returned. So an
// acknowledged row is always committed, and a closed or crashed store can only fail
// callers that were never acknowledged.
type receivedLog struct {
	s *sqlStore

	mu      sync.Mutex
	pending []*receivedRequest
	closed  bool

	wake   chan struct{} // capacity 1: "pending may be non-empty"
	exited chan struct{} // closed when the writer returns

	// sched reads the scheduler's runnable and running goroutines (writer only).
	sched [2]metrics.Sample

	// stmts are the prepared inserts (SQLite), used and closed by the writer only.
	stmts map[string]*sql.Stmt

	// expected counts the rows announced by ExpectReceived and not yet queued or
	// withdrawn; hinted is set once any was announced: from then on the writer waits
	// for announced rows instead of guessing from the scheduler (received_expect.go).
	expected atomic.Int64
	hinted   atomic.Bool

	// batches and rows count the transactions written and the rows they held, so
	// that benchmarks can report the batch size a load reaches.
	batches, rows atomic.Int64
	// sizes counts batches by size, for the batch-size histogram (commit_stats.go).
	sizes batchSizes

	// lingerExpected is receivedBatchLingerExpected; tests set it (before the first
	// RecordReceived) to hours, so that what they assert cannot depend on time.
	lingerExpected time.Duration

	// beforeBatch, when set (tests only, before the first RecordReceived), is called
	// by the writer with the size of each batch it has taken, before writing it.
	beforeBatch func(n int)
}

func newReceivedLog(s *sqlStore) *receivedLog {
	l := &receivedLog{s: s, wake: make(chan struct{}, 1), exited: make(chan struct{}), lingerExpected: receivedBatchLingerExpected}
	l.sched[0].Name = "/sched/goroutines/runnable:goroutines"
	l.sched[1].Name = "/sched/goroutines/running:goroutines"
	go l.run()
	return l
}

// enqueue queues one row; it fails at once when the store is closed.
func (l *receivedLog) enqueue(req *receivedRequest) error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	l.pending = append(l.pending, req)
	n := len(l.pending)
	l.mu.Unlock()
	if n == 1 || n == maxReceivedBatch { // the writer waits for the first row, or lingers for a full batch
		l.signal()
	}
	return nil
}

func (l *receivedLog) signal() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// pendingLen is how many rows wait for the writer (tests).
func (l *receivedLog) pendingLen() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.pending)
}

// take removes the next batch from the queue, within the bounds.
func (l *receivedLog) take() (batch []*receivedRequest, closed bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, size := 0, 0
	for n < len(l.pending) && n < maxReceivedBatch {
		size += len(l.pending[n].r.Raw)
		if n > 0 && size > maxReceivedBatchBytes {
			break
		}
		n++
	}
	batch = append(batch, l.pending[:n]...)
	rest := copy(l.pending, l.pending[n:])
	clear(l.pending[rest:])
	l.pending = l.pending[:rest]
	return batch, l.closed
}

// run is the writer goroutine.
func (l *receivedLog) run() {
	defer close(l.exited)
	defer func() {
		for _, st := range l.stmts {
			_ = st.Close()
		}
	}()
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	last := 0 // rows in the previous batch
	for {
		l.fill(linger, last)
		batch, closed := l.take()
		if len(batch) == 0 {
			if closed {
				return
			}
			<-l.wake
			continue
		}
		if l.beforeBatch != nil {
			l.beforeBatch(len(batch))
		}
		l.commit(batch)
		l.batches.Add(1)
		l.rows.Add(int64(len(batch)))
		l.sizes.observe(len(batch))
		for _, req := range batch {
			close(req.done)
		}
		last = len(batch)
	}
}

// fill waits a moment for more rows to share the next transaction, which costs more
// than a row (on SQLite about 45 µs of CPU against 4 µs a row in isolation), so that
// the commit's CPU is shared by more requests. The batching rule:
//
//   - The writer waits only while there is other work: rows the inbox announced
//     (ExpectReceived, received_expect.go) on their way, or goroutines running or ready
//     to run (requests not yet announced: their connections' goroutines were just
//     woken). Otherwise every caller is already waiting here, and the rows are written
//     at once; a lone request is too.
//   - It waits until the batch is full, the store closes, the linger bound passes
//     (receivedBatchLingerExpected once the inbox announces, receivedBatchLinger for
//     other callers, and for those only after a batch of several rows, as before
//     announcements existed), or, when the last announced row is queued, nothing else
//     is running or ready to run.
//
// It does not stop as soon as the announced rows are queued while other goroutines
// run: under the inbox load, requests not yet announced joined the transaction (8-9
// rows a transaction instead of 4.5 at 16 connections, issue 17, fourth session). It reads the scheduler's counts once per wake: reading them in a loop
// (yielding until nothing else was runnable) cost a tenth of the process's CPU in
// runtime/metrics.
func (l *receivedLog) fill(t *time.Timer, last int) {
	hinted := l.hinted.Load()
	if !hinted && last <= 1 {
		return
	}
	l.mu.Lock()
	n, closed := len(l.pending), l.closed
	l.mu.Unlock()
	if n == 0 || n >= maxReceivedBatch || closed || !l.busy(hinted) {
		return
	}
	linger := receivedBatchLinger
	if hinted {
		linger = l.lingerExpected
	}
	t.Reset(linger)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return
		case <-l.wake:
			l.mu.Lock()
			done := len(l.pending) >= maxReceivedBatch || l.closed
			l.mu.Unlock()
			if done || (hinted && l.expected.Load() <= 0 && !l.busy(hinted)) {
				return
			}
		}
	}
}

// busy reports whether rows are likely on their way: announced ones (when the inbox
// announces), or other goroutines running or ready to run.
func (l *receivedLog) busy(hinted bool) bool {
	if hinted && l.expected.Load() > 0 {
		return true
	}
	runtime.Gosched() // let the callers just woken run, before asking who is busy
	metrics.Read(l.sched[:])
	return l.sched[0].Value.Uint64() > 0 || l.sched[1].Value.Uint64() > 1 // runnable, running (besides this one)
}

// close fails every row not yet taken with ErrClosed, lets the batch being written
// finish (its callers learn its real outcome), and stops the writer.
func (l *receivedLog) close() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		<-l.exited
		return
	}
	l.closed = true
	for _, req := range l.pending {
		req.err = ErrClosed
		close(req.done)
	}
	l.pending = nil
	l.mu.Unlock()
	l.signal()
	<-l.exited
}

// commit writes one batch in one transaction. When it fails and holds more than one
// row, every row is retried in a transaction of its own: a single row the database
// refuses must not fail the other peers' activities, and each caller then gets the
// outcome of its own row (a store that is down fails every one of them).
func (l *receivedLog) commit(batch []*receivedRequest) {
	err := l.write(batch)
	if err == nil || len(batch) == 1 {
		if err != nil {
			batch[0].err = err
		}
		return
	}
	for _, req := range batch {
		req.err = l.write([]*receivedRequest{req})
	}
}

// write runs one transaction for the batch and, after it committed, sets isNew on
// each request.
func (l *receivedLog) write(batch []*receivedRequest) error {
	ctx, cancel := context.WithTimeout(context.Background(), receivedBatchTimeout)
	defer cancel()
	q := insertReceivedSQL(l.s.eng, batch)
	prepared := l.statement(ctx, q)
	var inserted map[string]bool
	err := l.s.inTx(ctx, func(t tx) error {
		var err error
		inserted, err = insertReceived(ctx, t, batch, q, prepared)
		return err
	})
	if err != nil {
		return err // RecordReceived names the row
	}
	for _, req := range batch {
		req.isNew = inserted[req.r.ID]
		delete(inserted, req.r.ID) // a second copy of the same id in the batch is a replay
	}
	return nil
}

// statement returns q prepared on SQLite's one writer connection, once per text (so
// once per batch size, at most maxReceivedBatch of them): preparing the multi-row
// insert was a tenth of the writer's time. It is prepared before the transaction,
// which holds that connection. On PostgreSQL it returns nil: pgx caches statements
// itself. A failure returns nil too, and the transaction reports the error.
func (l *receivedLog) statement(ctx context.Context, q string) *sql.Stmt {
	if l.s.eng != engineSQLite {
		return nil
	}
	if st, ok := l.stmts[q]; ok {
		return st
	}
	st, err := l.s.w.PrepareContext(ctx, l.s.q(q))
	if err != nil {
		return nil
	}
	if l.stmts == nil {
		l.stmts = map[string]*sql.Stmt{}
	}
	l.stmts[q] = st
	return st
}

// insertReceivedSQL is the multi-row insert of the batch's distinct ids.
//
// On SQLite it is INSERT OR IGNORE rather than ON CONFLICT (id) DO NOTHING: with the
// latter, the NOT NULL columns keep their ABORT resolution, so SQLite opens a statement
// journal for the multi-row insert inside the transaction, copies every existing page
// it changes there first, and past 64 KiB spills it to a temporary file (with the id
// index's leaves spread by peer and activity, a batch of 16 rows does): 10-15 % of the
// writer's CPU in the inbox profiles (issue 17). OR IGNORE also skips a row whose
// NOT NULL column is NULL, which the caller never sends; insertReceived still checks
// that every id of the batch has a row once the statement ran, so a row skipped for any
// reason fails its caller instead of being taken for a replay. A trigger's
// RAISE(ABORT) still aborts.
func insertReceivedSQL(eng engine, batch []*receivedRequest) string {
	seen := make(map[string]bool, len(batch))
	for _, req := range batch {
		seen[req.r.ID] = true
	}
	verb, conflict := `INSERT INTO`, ` ON CONFLICT (id) DO NOTHING`
	if eng == engineSQLite {
		verb, conflict = `INSERT OR IGNORE INTO`, ``
	}
	return verb + ` received (id, actor_id, type, received, raw) VALUES ` +
		strings.TrimSuffix(strings.Repeat(`(?, ?, ?, ?, ?), `, len(seen)), `, `) +
		conflict + ` RETURNING id, seq`
}

// insertReceived writes the batch's rows (insert-if-absent by id) and their
// recipients, and returns the ids this transaction inserted. The first copy of an id
// in the batch is the one written; recipients of every copy, and of rows that existed
// before, are added.
func insertReceived(ctx context.Context, t tx, batch []*receivedRequest, q string, prepared *sql.Stmt) (map[string]bool, error) {
	var (
		args = make([]any, 0, 5*len(batch))
		seen = make(map[string]bool, len(batch))
	)
	for _, req := range batch {
		if !seen[req.r.ID] {
			seen[req.r.ID] = true
			args = append(args, req.r.ID, req.r.ActorID, req.r.Type, req.at, []byte(req.r.Raw))
		}
	}
	var (
		rows *sql.Rows
		err  error
	)
	if prepared != nil {
		rows, err = t.tx.StmtContext(ctx, prepared).QueryContext(ctx, args...)
	} else {
		rows, err = t.query(ctx, q, args...)
	}
	if err != nil {
		return nil, err
	}
	inserted := make(map[string]bool, len(seen))
	seqs := make(map[string]int64, len(seen))
	if err := scanSeqs(rows, seqs, inserted); err != nil {
		return nil, err
	}

	// The seq of each id not inserted now: its row existed before (a replay), which is
	// checked here, so that an id skipped for another reason is an error, never a
	// replay; the recipients need the seqs too.
	var (
		ids    []any
		wanted = map[string]bool{}
	)
	for _, req := range batch {
		if _, ok := seqs[req.r.ID]; !ok && !wanted[req.r.ID] {
			wanted[req.r.ID] = true
			ids = append(ids, req.r.ID)
		}
	}
	if len(ids) > 0 {
		rows, err = t.query(ctx, `SELECT id, seq FROM received WHERE id IN (`+placeholders(len(ids))+`)`, ids...)
		if err != nil {
			return nil, err
		}
		if err := scanSeqs(rows, seqs, nil); err != nil {
			return nil, err
		}
	}
	var pairs []any
	flush := func() error {
		if len(pairs) == 0 {
			return nil
		}
		_, err := t.exec(ctx, `INSERT INTO received_recipients (local_actor_id, received_seq) VALUES `+
			strings.TrimSuffix(strings.Repeat(`(?, ?), `, len(pairs)/2), `, `)+` ON CONFLICT DO NOTHING`, pairs...)
		pairs = pairs[:0]
		return err
	}
	for _, req := range batch {
		seq, ok := seqs[req.r.ID]
		if !ok {
			return nil, fmt.Errorf("received %s has no row after insert", req.r.ID)
		}
		for _, local := range req.recipients {
			pairs = append(pairs, local, seq)
			if len(pairs) == 2*maxRecipientRows {
				if err := flush(); err != nil {
					return nil, err
				}
			}
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return inserted, nil
}

// scanSeqs reads (id, seq) rows into seqs, and marks each id in ids when it is set.
func scanSeqs(rows *sql.Rows, seqs map[string]int64, ids map[string]bool) error {
	defer rows.Close()
	for rows.Next() {
		var (
			id  string
			seq int64
		)
		if err := rows.Scan(&id, &seq); err != nil {
			return err
		}
		seqs[id] = seq
		if ids != nil {
			ids[id] = true
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return rows.Close()
}
