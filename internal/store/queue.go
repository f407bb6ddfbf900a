package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Delivery row states, stored as small integers.
const (
	statePending   = 0
	stateDelivered = 1
	stateDead      = 2
)

// enqueueBatch bounds the rows of one multi-row INSERT (7 parameters each), far under
// both engines' parameter limits.
const enqueueBatch = 500

// EnqueueDeliveries implements Store.
func (s *sqlStore) EnqueueDeliveries(ctx context.Context, activityID string, targets []DeliveryTarget, due time.Time) (int, error) {
	n := 0
	err := s.inTx(ctx, func(t tx) error {
		var actorID string
		if err := t.queryRow(ctx, `SELECT actor_id FROM activities WHERE id = ?`, activityID).Scan(&actorID); err != nil {
			return notFound(err, "enqueue deliveries of activity "+activityID)
		}
		var err error
		n, err = enqueue(ctx, t, activityID, actorID, targets, due)
		return err
	})
	return n, err
}

// enqueue inserts delivery rows in multi-row statements inside the caller's
// transaction, skipping targets that already have a row for the activity.
func enqueue(ctx context.Context, t tx, activityID, actorID string, targets []DeliveryTarget, due time.Time) (int, error) {
	now := micros(utcNow())
	total := 0
	for start := 0; start < len(targets); start += enqueueBatch {
		chunk := targets[start:min(start+enqueueBatch, len(targets))]
		var b strings.Builder
		b.WriteString(`INSERT INTO deliveries (activity_id, actor_id, inbox, host, state, next_attempt, created) VALUES `)
		args := make([]any, 0, 7*len(chunk))
		for i, tg := range chunk {
			if tg.Inbox == "" || tg.Host == "" {
				return 0, fmt.Errorf("store: delivery of %s: target needs inbox and host", activityID)
			}
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(`(?, ?, ?, ?, ?, ?, ?)`)
			args = append(args, activityID, actorID, tg.Inbox, tg.Host, statePending, micros(due), now)
		}
		b.WriteString(` ON CONFLICT (activity_id, inbox) DO NOTHING`)
		res, err := t.exec(ctx, b.String(), args...)
		if err != nil {
			return 0, fmt.Errorf("store: enqueue deliveries of %s: %w", activityID, err)
		}
		n, _ := res.RowsAffected()
		total += int(n)
	}
	return total, nil
}

// LeaseDeliveries implements Store. A lease is the row's next_attempt moved to the
// lease expiry with the owner recorded: a worker that dies simply lets the row become
// due again, with no sweeper needed. PostgreSQL skips rows another worker is leasing
// (FOR UPDATE SKIP LOCKED); SQLite runs the statement in its single writer.
func (s *sqlStore) LeaseDeliveries(ctx context.Context, req LeaseRequest) ([]Delivery, error) {
	if req.Owner == "" {
		return nil, errors.New("store: lease without owner")
	}
	if req.Limit <= 0 || req.Lease <= 0 {
		return nil, fmt.Errorf("store: lease needs a positive limit and duration (got %d, %s)", req.Limit, req.Lease)
	}
	now := req.Now
	if now.IsZero() {
		now = utcNow()
	}
	expires := now.Add(req.Lease)
	lock := ""
	if s.eng == enginePostgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	var out []Delivery
	err := s.inTx(ctx, func(t tx) error {
		rows, err := t.query(ctx, `UPDATE deliveries SET attempt = attempt + 1, lease_owner = ?, next_attempt = ?
			WHERE id IN (SELECT id FROM deliveries WHERE state = 0 AND next_attempt <= ?
				ORDER BY next_attempt, id LIMIT ?`+lock+`)
			RETURNING id, activity_id, actor_id, inbox, host, attempt, last_error`,
			req.Owner, micros(expires), micros(now), req.Limit)
		if err != nil {
			return fmt.Errorf("store: lease deliveries for %s: %w", req.Owner, err)
		}
		defer rows.Close()
		for rows.Next() {
			d := Delivery{LeaseOwner: req.Owner, LeaseExpires: fromMicros(micros(expires))}
			if err := rows.Scan(&d.ID, &d.ActivityID, &d.ActorID, &d.Inbox, &d.Host, &d.Attempt, &d.LastError); err != nil {
				return fmt.Errorf("store: lease deliveries for %s: %w", req.Owner, err)
			}
			out = append(out, d)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b Delivery) int { return int(a.ID - b.ID) })
	return out, nil
}

// MarkDelivered implements Store.
func (s *sqlStore) MarkDelivered(ctx context.Context, id int64, at time.Time) error {
	if at.IsZero() {
		at = utcNow()
	}
	return s.inTx(ctx, func(t tx) error {
		res, err := t.exec(ctx, `UPDATE deliveries SET state = ?, finished = ?, lease_owner = '', last_error = ''
			WHERE id = ? AND state <> ?`, stateDelivered, micros(at), id, stateDelivered)
		if err != nil {
			return fmt.Errorf("store: mark delivery %d delivered: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return nil
		}
		var state int
		if err := t.queryRow(ctx, `SELECT state FROM deliveries WHERE id = ?`, id).Scan(&state); err != nil {
			return notFound(err, fmt.Sprintf("delivery %d", id))
		}
		return nil // already delivered: idempotent
	})
}

// release ends a lease held by owner with the given update, or reports ErrLeaseLost.
func (s *sqlStore) release(ctx context.Context, id int64, owner, set string, args ...any) error {
	return s.inTx(ctx, func(t tx) error {
		args = append(args, id, owner)
		res, err := t.exec(ctx, `UPDATE deliveries SET `+set+`, lease_owner = ''
			WHERE id = ? AND state = 0 AND lease_owner = ?`, args...)
		if err != nil {
			return fmt.Errorf("store: release delivery %d: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("delivery %d held by %q: %w", id, owner, ErrLeaseLost)
		}
		return nil
	})
}

// MarkFailed implements Store.
func (s *sqlStore) MarkFailed(ctx context.Context, id int64, owner string, next time.Time, lastErr string) error {
	if lastErr == "" {
		lastErr = "unknown error"
	}
	return s.release(ctx, id, owner, `next_attempt = ?, last_error = ?`, micros(next), lastErr)
}

// GiveUp implements Store.
func (s *sqlStore) GiveUp(ctx context.Context, id int64, owner string, at time.Time, reason string) error {
	if at.IsZero() {
		at = utcNow()
	}
	if reason == "" {
		reason = "given up"
	}
	return s.release(ctx, id, owner, `state = ?, finished = ?, last_error = ?`, stateDead, micros(at), reason)
}

// QueueStats implements Store with one scan of the queue; callers poll it at most
// once per metrics scrape or status write.
func (s *sqlStore) QueueStats(ctx context.Context, now time.Time) (QueueStats, error) {
	var st QueueStats
	err := s.queryRow(ctx, `SELECT
			COALESCE(SUM(CASE WHEN state = 0 THEN 1 ELSE 0 END), 0),
			COALESCE(SUM(CASE WHEN state = 0 AND next_attempt <= ? THEN 1 ELSE 0 END), 0),
			COALESCE(SUM(CASE WHEN state = 0 AND last_error <> '' THEN 1 ELSE 0 END), 0),
			COALESCE(SUM(CASE WHEN state = 1 THEN 1 ELSE 0 END), 0),
			COALESCE(SUM(CASE WHEN state = 2 THEN 1 ELSE 0 END), 0)
		FROM deliveries`, micros(now)).Scan(&st.Pending, &st.Due, &st.Retrying, &st.Delivered, &st.Dead)
	if err != nil {
		return QueueStats{}, fmt.Errorf("store: queue stats: %w", err)
	}
	return st, nil
}

// PruneDeliveries implements Store.
func (s *sqlStore) PruneDeliveries(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.inTx(ctx, func(t tx) error {
		res, err := t.exec(ctx, `DELETE FROM deliveries WHERE state <> 0 AND finished < ?`, micros(before))
		if err != nil {
			return fmt.Errorf("store: prune deliveries: %w", err)
		}
		n, _ = res.RowsAffected()
		return nil
	})
	return n, err
}

// PendingDeliveries implements Store.
func (s *sqlStore) PendingDeliveries(ctx context.Context, activityID string) (int64, error) {
	var n int64
	err := s.inTx(ctx, func(t tx) error {
		return t.queryRow(ctx, `SELECT COUNT(*) FROM deliveries WHERE activity_id = ? AND state = ?`, activityID, statePending).Scan(&n)
	})
	if err != nil {
		return 0, fmt.Errorf("store: counting pending deliveries of %s: %w", activityID, err)
	}
	return n, nil
}
