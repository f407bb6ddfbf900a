package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// feedBatch bounds the IN list of one dedupe query.
const feedBatch = 500

// MarkFeedEntriesSeen implements Store.
func (s *sqlStore) MarkFeedEntriesSeen(ctx context.Context, sourceID string, entryIDs []string, at time.Time) ([]string, error) {
	if sourceID == "" {
		return nil, errors.New("store: feed entries without source")
	}
	if at.IsZero() {
		at = utcNow()
	}
	var fresh []string
	err := s.inTx(ctx, func(t tx) error {
		fresh = fresh[:0]
		for _, id := range entryIDs {
			res, err := t.exec(ctx, `INSERT INTO feed_entries (source_id, entry_id, seen) VALUES (?, ?, ?)
				ON CONFLICT (source_id, entry_id) DO NOTHING`, sourceID, id, micros(at))
			if err != nil {
				return fmt.Errorf("store: mark feed %s entry %s: %w", sourceID, id, err)
			}
			if n, _ := res.RowsAffected(); n == 1 {
				fresh = append(fresh, id)
			}
		}
		return nil
	})
	return fresh, err
}

// FilterUnseenFeedEntries implements Store.
func (s *sqlStore) FilterUnseenFeedEntries(ctx context.Context, sourceID string, entryIDs []string) ([]string, error) {
	seen := make(map[string]bool, len(entryIDs))
	for start := 0; start < len(entryIDs); start += feedBatch {
		chunk := entryIDs[start:min(start+feedBatch, len(entryIDs))]
		args := []any{sourceID}
		for _, id := range chunk {
			args = append(args, id)
		}
		rows, err := s.query(ctx, `SELECT entry_id FROM feed_entries WHERE source_id = ? AND entry_id IN (`+
			placeholders(len(chunk))+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("store: feed %s entries: %w", sourceID, err)
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, fmt.Errorf("store: feed %s entries: %w", sourceID, err)
			}
			seen[id] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("store: feed %s entries: %w", sourceID, err)
		}
	}
	var out []string
	for _, id := range entryIDs {
		if !seen[id] {
			out = append(out, id)
			seen[id] = true // report a duplicate within the input once
		}
	}
	return out, nil
}

// GetFeedState implements Store.
func (s *sqlStore) GetFeedState(ctx context.Context, sourceID string) (FeedState, error) {
	st := FeedState{SourceID: sourceID}
	var polled int64
	err := s.queryRow(ctx, `SELECT etag, last_modified, polled FROM feed_state WHERE source_id = ?`, sourceID).
		Scan(&st.ETag, &st.LastModified, &polled)
	if err != nil {
		if errors.Is(notFound(err, ""), ErrNotFound) {
			return st, nil
		}
		return FeedState{}, fmt.Errorf("store: feed %s state: %w", sourceID, err)
	}
	st.PolledAt = fromMicros(polled)
	return st, nil
}

// PutFeedState implements Store.
func (s *sqlStore) PutFeedState(ctx context.Context, st FeedState) error {
	if st.SourceID == "" {
		return errors.New("store: feed state without source")
	}
	return s.inTx(ctx, func(t tx) error {
		_, err := t.exec(ctx, `INSERT INTO feed_state (source_id, etag, last_modified, polled) VALUES (?, ?, ?, ?)
			ON CONFLICT (source_id) DO UPDATE SET etag = excluded.etag, last_modified = excluded.last_modified,
				polled = excluded.polled`, st.SourceID, st.ETag, st.LastModified, micros(st.PolledAt))
		if err != nil {
			return fmt.Errorf("store: put feed %s state: %w", st.SourceID, err)
		}
		return nil
	})
}
