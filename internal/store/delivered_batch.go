package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// DeliveredMark is one 2xx to record: the delivery row and when the peer answered.
type DeliveredMark struct {
	// ID is the delivery row (Delivery.ID).
	ID int64
	// At is when the 2xx arrived; zero means now.
	At time.Time
	// HostUp, when set, names the row's host, whose failure state is reset as
	// RecordHostSuccess(HostUp, At) does, in the same transaction: the executor's first
	// 2xx from a host (or its first after failures) then costs no transaction of its own,
	// which in a fan-out to shared inboxes was one more per POST.
	HostUp string
}

// DeliveredBatches records many 2xx answers in one transaction. A fan-out to 10,000
// personal inboxes answers 10,000 times; one transaction (and on SQLite one WAL sync)
// per answer was the largest cost after signing (docs/benchmarks.md, issue 17), so the
// executor group-commits the answers that arrive while the previous commit runs.
type DeliveredBatches interface {
	// MarkDeliveredBatch records each mark as MarkDelivered does (idempotent; a row
	// already delivered keeps its first finish time), and each HostUp as
	// RecordHostSuccess does, all in one transaction. A row that no longer exists is
	// skipped (MarkDelivered reports it as ErrNotFound); any other failure rolls back the
	// whole batch, so the caller can retry it.
	MarkDeliveredBatch(ctx context.Context, marks []DeliveredMark) error
}

// markChunk bounds the rows of one UPDATE statement (two parameters each).
const markChunk = 200

// MarkDeliveredBatch implements DeliveredBatches. On PostgreSQL it is one UPDATE ... FROM
// (SELECT ... UNION ALL ...) per chunk of rows, so that a batch is one round trip per chunk
// rather than one per row; CAST keeps the parameters typed. On SQLite, in process, a round
// trip costs nothing but parsing does: a 200-row UNION statement is new text for every
// batch size and was parsed again each time (1.4 of its 2.5 s of CPU in the issue 17
// fan-out profile), so SQLite runs one prepared single-row UPDATE per mark instead, in the
// same one transaction.
func (s *sqlStore) MarkDeliveredBatch(ctx context.Context, marks []DeliveredMark) error {
	if len(marks) == 0 {
		return nil
	}
	now := utcNow()
	if s.eng != enginePostgres {
		return s.inTx(ctx, func(t tx) error {
			if err := markEach(ctx, t, marks, now); err != nil {
				return err
			}
			return hostsUp(ctx, t, marks, now)
		})
	}
	all := marks
	return s.inTx(ctx, func(t tx) error {
		for len(marks) > 0 {
			chunk := marks[:min(len(marks), markChunk)]
			marks = marks[len(chunk):]
			var q strings.Builder
			q.WriteString(`UPDATE deliveries SET state = ?, finished = v.fin, lease_owner = '', last_error = ''
				FROM (`)
			args := make([]any, 0, 2*len(chunk)+2)
			args = append(args, stateDelivered)
			for i, m := range chunk {
				if i > 0 {
					q.WriteString(" UNION ALL ")
				}
				q.WriteString("SELECT CAST(? AS BIGINT) AS id, CAST(? AS BIGINT) AS fin")
				at := m.At
				if at.IsZero() {
					at = now
				}
				args = append(args, m.ID, micros(at))
			}
			q.WriteString(`) AS v WHERE deliveries.id = v.id AND deliveries.state <> ?`)
			args = append(args, stateDelivered)
			if _, err := t.exec(ctx, q.String(), args...); err != nil {
				return fmt.Errorf("store: mark %d deliveries delivered: %w", len(chunk), err)
			}
		}
		return hostsUp(ctx, t, all, now)
	})
}

// hostsUp resets the failure state of every host the marks name (HostUp), once each,
// with one prepared statement.
func hostsUp(ctx context.Context, t tx, marks []DeliveredMark, now time.Time) error {
	var st *sql.Stmt
	seen := map[string]bool{}
	for _, m := range marks {
		if m.HostUp == "" || seen[m.HostUp] {
			continue
		}
		seen[m.HostUp] = true
		if st == nil {
			var err error
			if st, err = t.tx.PrepareContext(ctx, t.s.q(hostSuccessSQL)); err != nil {
				return fmt.Errorf("store: record success of host %s: %w", m.HostUp, err)
			}
			defer st.Close()
		}
		at := m.At
		if at.IsZero() {
			at = now
		}
		if _, err := st.ExecContext(ctx, m.HostUp, false, micros(at)); err != nil {
			return fmt.Errorf("store: record success of host %s: %w", m.HostUp, err)
		}
	}
	return nil
}

// markEach writes marks with one prepared statement, each as MarkDelivered does (a row
// already delivered keeps its first finish time; a missing row is skipped).
func markEach(ctx context.Context, t tx, marks []DeliveredMark, now time.Time) error {
	st, err := t.tx.PrepareContext(ctx, t.s.q(`UPDATE deliveries SET state = ?, finished = ?, lease_owner = '', last_error = ''
		WHERE id = ? AND state <> ?`))
	if err != nil {
		return fmt.Errorf("store: mark %d deliveries delivered: %w", len(marks), err)
	}
	defer st.Close()
	for _, m := range marks {
		at := m.At
		if at.IsZero() {
			at = now
		}
		if _, err := st.ExecContext(ctx, stateDelivered, micros(at), m.ID, stateDelivered); err != nil {
			return fmt.Errorf("store: mark delivery %d delivered: %w", m.ID, err)
		}
	}
	return nil
}
