package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// RecordReceived implements Store. The activity row is inserted if absent; recipients
// are added either way, so a replay that reaches a second local actor through its
// personal inbox still lists there, while isNew tells the caller not to act twice.
// The write is group-committed with the calls waiting at the same moment
// (received_log.go); it returns only after the transaction holding the row
// committed, or with an error (ErrClosed when the store closed first). When ctx ends
// first it returns ctx's error, and the row may still be written: the caller must not
// acknowledge it, and a retry finds it as a replay.
func (s *sqlStore) RecordReceived(ctx context.Context, r Received, recipients []string) (bool, error) {
	switch {
	case r.ID == "":
		return false, errors.New("store: received activity without id")
	case r.ActorID == "" || r.Type == "" || len(r.Raw) == 0:
		return false, fmt.Errorf("store: received activity %s needs actor, type and body", r.ID)
	}
	at := r.ReceivedAt
	if at.IsZero() {
		at = utcNow()
	}
	req := &receivedRequest{r: r, at: micros(at), recipients: recipients, done: make(chan struct{})}
	err := s.received.enqueue(req)
	withdrawExpectation(ctx) // queued (or refused): the writer need not wait for it
	if err != nil {
		return false, fmt.Errorf("store: record received %s: %w", r.ID, err)
	}
	select {
	case <-req.done:
		if req.err != nil {
			return false, fmt.Errorf("store: record received %s: %w", r.ID, req.err)
		}
		return req.isNew, nil
	case <-ctx.Done():
		return false, fmt.Errorf("store: record received %s: %w", r.ID, ctx.Err())
	}
}

const receivedColumns = `r.seq, r.id, r.actor_id, r.type, r.received, r.raw`

func scanReceived(sc interface{ Scan(...any) error }) (Received, int64, error) {
	var (
		r       Received
		seq, at int64
		raw     []byte
	)
	if err := sc.Scan(&seq, &r.ID, &r.ActorID, &r.Type, &at, &raw); err != nil {
		return Received{}, 0, err
	}
	r.ReceivedAt, r.Raw = fromMicros(at), raw
	return r, seq, nil
}

// GetReceived implements Store.
func (s *sqlStore) GetReceived(ctx context.Context, id string) (Received, error) {
	r, _, err := scanReceived(s.queryRow(ctx, `SELECT `+receivedColumns+` FROM received r WHERE r.id = ?`, id))
	if err != nil {
		return Received{}, notFound(err, "received "+id)
	}
	return r, nil
}

// ListReceived implements Store, walking the (local_actor_id, received_seq) primary
// key backwards from the cursor.
func (s *sqlStore) ListReceived(ctx context.Context, localActorID, cursor string, limit int) (ReceivedPage, error) {
	limit = clampLimit(limit)
	var (
		b    strings.Builder
		args = []any{localActorID}
	)
	b.WriteString(`SELECT ` + receivedColumns + ` FROM received_recipients rr JOIN received r ON r.seq = rr.received_seq
		WHERE rr.local_actor_id = ?`)
	if cursor != "" {
		key, err := decodeCursor(cursor, 1)
		if err != nil {
			return ReceivedPage{}, err
		}
		b.WriteString(` AND rr.received_seq < ?`)
		args = append(args, key[0])
	}
	b.WriteString(` ORDER BY rr.received_seq DESC LIMIT ?`)
	args = append(args, limit+1)
	rows, err := s.query(ctx, b.String(), args...)
	if err != nil {
		return ReceivedPage{}, fmt.Errorf("store: list received of %s: %w", localActorID, err)
	}
	defer rows.Close()
	var (
		page ReceivedPage
		last int64
	)
	for rows.Next() {
		r, seq, err := scanReceived(rows)
		if err != nil {
			return ReceivedPage{}, fmt.Errorf("store: list received of %s: %w", localActorID, err)
		}
		if len(page.Items) == limit {
			page.Next = encodeCursor(last)
			break
		}
		page.Items = append(page.Items, r)
		last = seq
	}
	if err := rows.Err(); err != nil {
		return ReceivedPage{}, fmt.Errorf("store: list received of %s: %w", localActorID, err)
	}
	return page, nil
}
