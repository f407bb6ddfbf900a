package store

import (
	"context"
	"fmt"
	"time"
)

// DeliveredMark is one 2xx to record: the delivery row and when the peer answered.
type DeliveredMark struct {
	// ID is the delivery row (Delivery.ID).
	ID int64
	// At is when the 2xx arrived; zero means now.
	At time.Time
}

// DeliveredBatches records many 2xx answers in one transaction. A fan-out to 10,000
// personal inboxes answers 10,000 times; one transaction (and on SQLite one WAL sync)
// per answer was the largest cost after signing (docs/benchmarks.md, issue 17), so the
// executor group-commits the answers that arrive while the previous commit runs.
type DeliveredBatches interface {
	// MarkDeliveredBatch records each mark as MarkDelivered does (idempotent; a row
	// already delivered keeps its first finish time), all in one transaction. A row
	// that no longer exists is skipped (MarkDelivered reports it as ErrNotFound); any
	// other failure rolls back the whole batch, so the caller can retry it.
	MarkDeliveredBatch(ctx context.Context, marks []DeliveredMark) error
}

// MarkDeliveredBatch implements DeliveredBatches.
func (s *sqlStore) MarkDeliveredBatch(ctx context.Context, marks []DeliveredMark) error {
	if len(marks) == 0 {
		return nil
	}
	now := utcNow()
	return s.inTx(ctx, func(t tx) error {
		stmt, err := t.tx.PrepareContext(ctx, s.q(`UPDATE deliveries SET state = ?, finished = ?, lease_owner = '', last_error = ''
			WHERE id = ? AND state <> ?`))
		if err != nil {
			return fmt.Errorf("store: mark %d deliveries delivered: %w", len(marks), err)
		}
		defer stmt.Close()
		for _, m := range marks {
			at := m.At
			if at.IsZero() {
				at = now
			}
			if _, err := stmt.ExecContext(ctx, stateDelivered, micros(at), m.ID, stateDelivered); err != nil {
				return fmt.Errorf("store: mark delivery %d delivered: %w", m.ID, err)
			}
		}
		return nil
	})
}
