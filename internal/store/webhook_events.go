package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// WebhookEventState is where an accepted webhook stands.
type WebhookEventState int

// The states of a queued webhook event, stored as small integers like deliveries'.
const (
	// WebhookEventPending rows will be processed (due, leased or waiting for a retry).
	WebhookEventPending WebhookEventState = 0
	// WebhookEventDone rows were processed; kept for a while so that a forge's
	// redelivery of the same delivery id is recognised.
	WebhookEventDone WebhookEventState = 1
	// WebhookEventDead rows failed for good (an event that cannot be rendered, a source
	// deleted since); kept for a while for inspection.
	WebhookEventDead WebhookEventState = 2
)

// WebhookEvent is one authenticated forge webhook, accepted and queued by the webhook
// handler and processed by its worker (internal/sources), so that the forge is answered
// before the slow part (forge reads, signing, publishing) runs.
type WebhookEvent struct {
	// ID orders the events: within a lane they are processed in ID order.
	ID int64
	// Username and Source are the webhook's path (/hooks/{username}/{source}); together
	// they are the event's lane.
	Username, Source string
	// DeliveryID is the forge's id of the delivery (X-Gitea-Delivery, ...); a second
	// row with the same id in the same lane is never added. "" when the forge sent none.
	DeliveryID string
	// Actor (namespace/name) and Forge are for logs and metrics.
	Actor, Forge string
	// Payload is the parsed event, as internal/sources encodes it.
	Payload json.RawMessage
	// State is pending, done or dead.
	State WebhookEventState
	// Attempt counts leases, starting at 1 on the first.
	Attempt int
	// LeaseOwner is the worker holding the row.
	LeaseOwner string
	// LastError is the error of the previous attempt, or why the row is dead.
	LastError string
	// Received is when the webhook was accepted (UTC).
	Received time.Time
	// Finished is when it was done or given up (UTC), zero while pending.
	Finished time.Time
}

// WebhookEventStats summarise the webhook queue for metrics.
type WebhookEventStats struct {
	// Pending rows are waiting to be processed (or being processed).
	Pending int64
	// Retrying rows are pending after at least one failed attempt.
	Retrying int64
	// Dead rows failed for good and are not yet pruned.
	Dead int64
	// OldestPending is when the oldest pending row was received (zero when none).
	OldestPending time.Time
}

// WebhookEvents is the store side of the webhook queue. Store embeds it.
type WebhookEvents interface {
	// EnqueueWebhookEvent records e (Username, Source, Payload, optionally DeliveryID,
	// Actor, Forge), received and due at at, in one write. It returns the row and
	// whether it was created now: a delivery id already recorded in the lane (pending,
	// done or dead and not yet pruned) returns the existing row and false.
	EnqueueWebhookEvent(ctx context.Context, e WebhookEvent, at time.Time) (WebhookEvent, bool, error)
	// GetWebhookEvent returns a row by id, or ErrNotFound.
	GetWebhookEvent(ctx context.Context, id int64) (WebhookEvent, error)
	// LeaseWebhookEvents hands out up to Limit due rows to one worker, oldest first,
	// each the oldest pending row of its lane: a lane's next row is leased only after
	// the previous one is done or dead, and two workers never hold one row.
	LeaseWebhookEvents(ctx context.Context, req LeaseRequest) ([]WebhookEvent, error)
	// FinishWebhookEvent marks a leased row done. ErrLeaseLost when owner no longer holds it.
	FinishWebhookEvent(ctx context.Context, id int64, owner string, at time.Time) error
	// RetryWebhookEvent releases a leased row until next with the error; its lane waits.
	RetryWebhookEvent(ctx context.Context, id int64, owner string, next time.Time, lastErr string) error
	// GiveUpWebhookEvent marks a leased row dead with the reason; its lane moves on.
	GiveUpWebhookEvent(ctx context.Context, id int64, owner string, at time.Time, reason string) error
	// WebhookEventStats counts rows by state.
	WebhookEventStats(ctx context.Context) (WebhookEventStats, error)
	// PruneWebhookEvents deletes done and dead rows finished before before; it returns
	// how many. A redelivery after that is processed again (publishing is idempotent).
	PruneWebhookEvents(ctx context.Context, before time.Time) (int64, error)
}

const webhookEventCols = `id, username, source, COALESCE(delivery_key, ''), actor, forge, payload, state, attempt,
	lease_owner, last_error, received, finished`

// webhookDeliveryKey is the unique key of a delivery id within its lane.
func webhookDeliveryKey(username, source, delivery string) any {
	if delivery == "" {
		return nil // NULL: never conflicts
	}
	return username + "\n" + source + "\n" + delivery
}

func scanWebhookEvent(r scanner) (WebhookEvent, error) {
	var e WebhookEvent
	var payload []byte
	var key string
	var state, received, finished int64
	if err := r.Scan(&e.ID, &e.Username, &e.Source, &key, &e.Actor, &e.Forge, &payload, &state, &e.Attempt,
		&e.LeaseOwner, &e.LastError, &received, &finished); err != nil {
		return e, err
	}
	if key != "" {
		e.DeliveryID = key[len(e.Username)+len(e.Source)+2:]
	}
	e.Payload, e.State = json.RawMessage(payload), WebhookEventState(state)
	e.Received, e.Finished = fromMicros(received), fromMicros(finished)
	return e, nil
}

// EnqueueWebhookEvent implements WebhookEvents.
func (s *sqlStore) EnqueueWebhookEvent(ctx context.Context, e WebhookEvent, at time.Time) (WebhookEvent, bool, error) {
	if e.Username == "" || e.Source == "" || len(e.Payload) == 0 {
		return WebhookEvent{}, false, errors.New("store: a webhook event needs username, source and payload")
	}
	if at.IsZero() {
		at = utcNow()
	}
	key := webhookDeliveryKey(e.Username, e.Source, e.DeliveryID)
	var out WebhookEvent
	created := false
	err := s.inTx(ctx, func(t tx) error {
		row := t.queryRow(ctx, `INSERT INTO webhook_events (delivery_key, username, source, actor, forge, payload, next_attempt, received)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (delivery_key) DO NOTHING RETURNING `+webhookEventCols,
			key, e.Username, e.Source, e.Actor, e.Forge, []byte(e.Payload), micros(at), micros(at))
		var err error
		out, err = scanWebhookEvent(row)
		if err == nil {
			created = true
			return nil
		}
		if key == nil || !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("store: queue webhook event %s/%s: %w", e.Username, e.Source, err)
		}
		out, err = scanWebhookEvent(t.queryRow(ctx, `SELECT `+webhookEventCols+` FROM webhook_events WHERE delivery_key = ?`, key))
		if err != nil {
			return fmt.Errorf("store: read webhook event %s/%s %s: %w", e.Username, e.Source, e.DeliveryID, err)
		}
		return nil
	})
	return out, created, err
}

// GetWebhookEvent implements WebhookEvents.
func (s *sqlStore) GetWebhookEvent(ctx context.Context, id int64) (WebhookEvent, error) {
	e, err := scanWebhookEvent(s.queryRow(ctx, `SELECT `+webhookEventCols+` FROM webhook_events WHERE id = ?`, id))
	if err != nil {
		return WebhookEvent{}, notFound(err, fmt.Sprintf("webhook event %d", id))
	}
	return e, nil
}

// LeaseWebhookEvents implements WebhookEvents, as LeaseDeliveries does, with one more
// condition: no older pending row in the same lane (a leased row is pending too, so its
// lane waits until it is finished, retried later or given up).
func (s *sqlStore) LeaseWebhookEvents(ctx context.Context, req LeaseRequest) ([]WebhookEvent, error) {
	if req.Owner == "" || req.Limit <= 0 || req.Lease <= 0 {
		return nil, errors.New("store: a webhook-event lease needs an owner, a positive limit and duration")
	}
	now := req.Now
	if now.IsZero() {
		now = utcNow()
	}
	lock := ""
	if s.eng == enginePostgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	var out []WebhookEvent
	err := s.inTx(ctx, func(t tx) error {
		out = out[:0]
		rows, err := t.query(ctx, `UPDATE webhook_events SET attempt = attempt + 1, lease_owner = ?, next_attempt = ?
			WHERE id IN (SELECT w.id FROM webhook_events w WHERE w.state = 0 AND w.next_attempt <= ?
				AND NOT EXISTS (SELECT 1 FROM webhook_events o
					WHERE o.username = w.username AND o.source = w.source AND o.state = 0 AND o.id < w.id)
				ORDER BY w.id LIMIT ?`+lock+`)
			RETURNING `+webhookEventCols,
			req.Owner, micros(now.Add(req.Lease)), micros(now), req.Limit)
		if err != nil {
			return fmt.Errorf("store: lease webhook events for %s: %w", req.Owner, err)
		}
		defer rows.Close()
		for rows.Next() {
			e, err := scanWebhookEvent(rows)
			if err != nil {
				return fmt.Errorf("store: lease webhook events for %s: %w", req.Owner, err)
			}
			out = append(out, e)
		}
		return rows.Err()
	})
	slices.SortFunc(out, func(a, b WebhookEvent) int { return int(a.ID - b.ID) })
	return out, err
}

// leasedWebhookUpdate changes a row that owner holds, or reports ErrLeaseLost.
func (s *sqlStore) leasedWebhookUpdate(ctx context.Context, id int64, owner, set string, args ...any) error {
	return s.inTx(ctx, func(t tx) error {
		args = append(args, id, owner)
		res, err := t.exec(ctx, `UPDATE webhook_events SET `+set+`, lease_owner = '' WHERE id = ? AND state = 0 AND lease_owner = ?`, args...)
		if err != nil {
			return fmt.Errorf("store: update webhook event %d: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("webhook event %d held by %q: %w", id, owner, ErrLeaseLost)
		}
		return nil
	})
}

// FinishWebhookEvent implements WebhookEvents.
func (s *sqlStore) FinishWebhookEvent(ctx context.Context, id int64, owner string, at time.Time) error {
	if at.IsZero() {
		at = utcNow()
	}
	return s.leasedWebhookUpdate(ctx, id, owner, `state = 1, finished = ?, last_error = ''`, micros(at))
}

// RetryWebhookEvent implements WebhookEvents.
func (s *sqlStore) RetryWebhookEvent(ctx context.Context, id int64, owner string, next time.Time, lastErr string) error {
	if lastErr == "" {
		lastErr = "unknown error"
	}
	return s.leasedWebhookUpdate(ctx, id, owner, `next_attempt = ?, last_error = ?`, micros(next), lastErr)
}

// GiveUpWebhookEvent implements WebhookEvents.
func (s *sqlStore) GiveUpWebhookEvent(ctx context.Context, id int64, owner string, at time.Time, reason string) error {
	if at.IsZero() {
		at = utcNow()
	}
	if reason == "" {
		reason = "given up"
	}
	return s.leasedWebhookUpdate(ctx, id, owner, `state = 2, finished = ?, last_error = ?`, micros(at), reason)
}

// WebhookEventStats implements WebhookEvents.
func (s *sqlStore) WebhookEventStats(ctx context.Context) (WebhookEventStats, error) {
	var st WebhookEventStats
	var oldest int64
	err := s.queryRow(ctx, `SELECT
			COALESCE(SUM(CASE WHEN state = 0 THEN 1 ELSE 0 END), 0),
			COALESCE(SUM(CASE WHEN state = 0 AND last_error <> '' THEN 1 ELSE 0 END), 0),
			COALESCE(SUM(CASE WHEN state = 2 THEN 1 ELSE 0 END), 0),
			COALESCE(MIN(CASE WHEN state = 0 THEN received END), 0)
		FROM webhook_events`).Scan(&st.Pending, &st.Retrying, &st.Dead, &oldest)
	if err != nil {
		return st, fmt.Errorf("store: webhook event stats: %w", err)
	}
	st.OldestPending = fromMicros(oldest)
	return st, nil
}

// PruneWebhookEvents implements WebhookEvents.
func (s *sqlStore) PruneWebhookEvents(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.inTx(ctx, func(t tx) error {
		res, err := t.exec(ctx, `DELETE FROM webhook_events WHERE state <> 0 AND finished < ?`, micros(before))
		if err != nil {
			return fmt.Errorf("store: prune webhook events: %w", err)
		}
		n, _ = res.RowsAffected()
		return nil
	})
	return n, err
}
