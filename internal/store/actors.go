package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// PutRemoteActor implements Store. Keys are replaced as a whole so that a rotated key
// stops verifying as soon as the new document is cached.
func (s *sqlStore) PutRemoteActor(ctx context.Context, a RemoteActor) error {
	if a.ID == "" {
		return errors.New("store: remote actor without id")
	}
	if a.FetchedAt.IsZero() {
		a.FetchedAt = utcNow()
	}
	var raw []byte
	if len(a.Raw) > 0 {
		raw = a.Raw
	}
	return s.inTx(ctx, func(t tx) error {
		_, err := t.exec(ctx, `INSERT INTO remote_actors (id, inbox, shared_inbox, raw, fetched, expires, negative, error)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET inbox = excluded.inbox, shared_inbox = excluded.shared_inbox,
				raw = excluded.raw, fetched = excluded.fetched, expires = excluded.expires,
				negative = excluded.negative, error = excluded.error`,
			a.ID, a.Inbox, a.SharedInbox, raw, micros(a.FetchedAt), micros(a.ExpiresAt), a.Negative, a.Error)
		if err != nil {
			return fmt.Errorf("store: put remote actor %s: %w", a.ID, err)
		}
		if _, err := t.exec(ctx, `DELETE FROM remote_keys WHERE actor_id = ?`, a.ID); err != nil {
			return fmt.Errorf("store: put remote actor %s keys: %w", a.ID, err)
		}
		for _, k := range a.Keys {
			if k.ID == "" || k.PEM == "" {
				return fmt.Errorf("store: remote actor %s: key needs id and PEM", a.ID)
			}
			// A key id moving to another actor is re-owned: the latest document wins,
			// and verification still checks that the owner is the activity's actor.
			if _, err := t.exec(ctx, `INSERT INTO remote_keys (key_id, actor_id, pem) VALUES (?, ?, ?)
				ON CONFLICT (key_id) DO UPDATE SET actor_id = excluded.actor_id, pem = excluded.pem`,
				k.ID, a.ID, k.PEM); err != nil {
				return fmt.Errorf("store: put remote key %s: %w", k.ID, err)
			}
		}
		return nil
	})
}

// GetRemoteActor implements Store.
func (s *sqlStore) GetRemoteActor(ctx context.Context, id string) (RemoteActor, error) {
	var (
		a                RemoteActor
		raw              []byte
		fetched, expires int64
	)
	err := s.queryRow(ctx, `SELECT id, inbox, shared_inbox, raw, fetched, expires, negative, error
		FROM remote_actors WHERE id = ?`, id).
		Scan(&a.ID, &a.Inbox, &a.SharedInbox, &raw, &fetched, &expires, &a.Negative, &a.Error)
	if err != nil {
		return RemoteActor{}, notFound(err, "remote actor "+id)
	}
	a.Raw, a.FetchedAt, a.ExpiresAt = raw, fromMicros(fetched), fromMicros(expires)
	rows, err := s.query(ctx, `SELECT key_id, pem FROM remote_keys WHERE actor_id = ? ORDER BY key_id`, id)
	if err != nil {
		return RemoteActor{}, fmt.Errorf("store: remote actor %s keys: %w", id, err)
	}
	defer rows.Close()
	for rows.Next() {
		k := PublicKey{OwnerID: id}
		if err := rows.Scan(&k.ID, &k.PEM); err != nil {
			return RemoteActor{}, fmt.Errorf("store: remote actor %s keys: %w", id, err)
		}
		a.Keys = append(a.Keys, k)
	}
	if err := rows.Err(); err != nil {
		return RemoteActor{}, fmt.Errorf("store: remote actor %s keys: %w", id, err)
	}
	return a, nil
}

// GetRemoteKey implements Store.
func (s *sqlStore) GetRemoteKey(ctx context.Context, keyID string) (PublicKey, time.Time, error) {
	var (
		k       PublicKey
		expires int64
	)
	err := s.queryRow(ctx, `SELECT k.key_id, k.actor_id, k.pem, a.expires
		FROM remote_keys k JOIN remote_actors a ON a.id = k.actor_id WHERE k.key_id = ?`, keyID).
		Scan(&k.ID, &k.OwnerID, &k.PEM, &expires)
	if err != nil {
		return PublicKey{}, time.Time{}, notFound(err, "remote key "+keyID)
	}
	return k, fromMicros(expires), nil
}

// DeleteRemoteActor implements Store; keys are deleted explicitly (not only by the
// foreign key cascade) so the behaviour does not depend on PRAGMA foreign_keys.
func (s *sqlStore) DeleteRemoteActor(ctx context.Context, id string) error {
	return s.inTx(ctx, func(t tx) error {
		if _, err := t.exec(ctx, `DELETE FROM remote_keys WHERE actor_id = ?`, id); err != nil {
			return fmt.Errorf("store: delete remote actor %s keys: %w", id, err)
		}
		if _, err := t.exec(ctx, `DELETE FROM remote_actors WHERE id = ?`, id); err != nil {
			return fmt.Errorf("store: delete remote actor %s: %w", id, err)
		}
		return nil
	})
}
