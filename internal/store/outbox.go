package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// defaultOutboxVisibilities is what an anonymous reader of an outbox may see.
var defaultOutboxVisibilities = []Visibility{Public, Unlisted}

func validateActivity(a Activity) error {
	switch {
	case a.ID == "":
		return errors.New("store: activity without id")
	case a.ActorID == "":
		return fmt.Errorf("store: activity %s without actor", a.ID)
	case a.Type == "":
		return fmt.Errorf("store: activity %s without type", a.ID)
	case !a.Visibility.Valid():
		return fmt.Errorf("store: activity %s: unknown visibility %q", a.ID, a.Visibility)
	case a.Published.IsZero():
		return fmt.Errorf("store: activity %s without published time", a.ID)
	case len(a.Raw) == 0:
		return fmt.Errorf("store: activity %s without body", a.ID)
	}
	if o := a.Object; o != nil {
		if o.ID == "" || o.Type == "" || len(o.Raw) == 0 {
			return fmt.Errorf("store: activity %s: embedded object needs id, type and body", a.ID)
		}
		if o.Visibility != "" && !o.Visibility.Valid() {
			return fmt.Errorf("store: object %s: unknown visibility %q", o.ID, o.Visibility)
		}
	}
	return nil
}

// AppendActivity implements Store.
func (s *sqlStore) AppendActivity(ctx context.Context, a Activity, targets []DeliveryTarget) (bool, error) {
	if err := validateActivity(a); err != nil {
		return false, err
	}
	created := false
	err := s.inTx(ctx, func(t tx) error {
		res, err := t.exec(ctx, `INSERT INTO activities (id, actor_id, type, object_id, visibility, published, raw)
			VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
			a.ID, a.ActorID, a.Type, a.ObjectID, string(a.Visibility), micros(a.Published), []byte(a.Raw))
		if err != nil {
			return fmt.Errorf("store: append activity %s: %w", a.ID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil // replayed publish: idempotent, nothing more to do
		}
		created = true
		if _, err := t.exec(ctx, `INSERT INTO outbox_counts (actor_id, visibility, n) VALUES (?, ?, 1)
			ON CONFLICT (actor_id, visibility) DO UPDATE SET n = outbox_counts.n + 1`,
			a.ActorID, string(a.Visibility)); err != nil {
			return fmt.Errorf("store: count activity %s: %w", a.ID, err)
		}
		if o := a.Object; o != nil {
			if err := putObject(ctx, t, a, *o); err != nil {
				return err
			}
		}
		if len(targets) > 0 {
			if _, err := enqueue(ctx, t, a.ID, a.ActorID, targets, time.Time{}); err != nil {
				return err
			}
		}
		return nil
	})
	return created, err
}

// putObject stores or replaces (Update) an embedded object, keeping its first
// published time.
func putObject(ctx context.Context, t tx, a Activity, o Object) error {
	if o.ActorID == "" {
		o.ActorID = a.ActorID
	}
	if o.Visibility == "" {
		o.Visibility = a.Visibility
	}
	if o.Published.IsZero() {
		o.Published = a.Published
	}
	if o.Updated.IsZero() {
		o.Updated = a.Published
	}
	_, err := t.exec(ctx, `INSERT INTO objects (id, actor_id, type, visibility, published, updated, raw)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET type = excluded.type, visibility = excluded.visibility,
			updated = excluded.updated, raw = excluded.raw`,
		o.ID, o.ActorID, o.Type, string(o.Visibility), micros(o.Published), micros(o.Updated), []byte(o.Raw))
	if err != nil {
		return fmt.Errorf("store: put object %s: %w", o.ID, err)
	}
	return nil
}

const activityColumns = `seq, id, actor_id, type, object_id, visibility, published, raw`

func scanActivity(sc interface{ Scan(...any) error }) (Activity, int64, error) {
	var (
		a        Activity
		seq, pub int64
		vis      string
		raw      []byte
		objectID sql.NullString
	)
	if err := sc.Scan(&seq, &a.ID, &a.ActorID, &a.Type, &objectID, &vis, &pub, &raw); err != nil {
		return Activity{}, 0, err
	}
	a.ObjectID = objectID.String
	a.Visibility = Visibility(vis)
	a.Published = fromMicros(pub)
	a.Raw = raw
	return a, seq, nil
}

// GetActivity implements Store.
func (s *sqlStore) GetActivity(ctx context.Context, id string) (Activity, error) {
	a, _, err := scanActivity(s.queryRow(ctx, `SELECT `+activityColumns+` FROM activities WHERE id = ?`, id))
	if err != nil {
		return Activity{}, notFound(err, "activity "+id)
	}
	return a, nil
}

// GetObject implements Store.
func (s *sqlStore) GetObject(ctx context.Context, id string) (Object, error) {
	var (
		o        Object
		vis      string
		pub, upd int64
		raw      []byte
	)
	err := s.queryRow(ctx, `SELECT id, actor_id, type, visibility, published, updated, raw FROM objects WHERE id = ?`, id).
		Scan(&o.ID, &o.ActorID, &o.Type, &vis, &pub, &upd, &raw)
	if err != nil {
		return Object{}, notFound(err, "object "+id)
	}
	o.Visibility, o.Published, o.Updated, o.Raw = Visibility(vis), fromMicros(pub), fromMicros(upd), raw
	return o, nil
}

// visibilityArgs validates and defaults a visibility filter.
func visibilityArgs(vis []Visibility) ([]any, error) {
	if len(vis) == 0 {
		vis = defaultOutboxVisibilities
	}
	args := make([]any, 0, len(vis))
	for _, v := range vis {
		if !v.Valid() {
			return nil, fmt.Errorf("store: unknown visibility %q", v)
		}
		args = append(args, string(v))
	}
	return args, nil
}

// ListOutbox implements Store. The page is read from the (actor_id, published, seq)
// index starting at the cursor's key, so its cost does not depend on its depth.
func (s *sqlStore) ListOutbox(ctx context.Context, q OutboxQuery) (OutboxPage, error) {
	visArgs, err := visibilityArgs(q.Visibilities)
	if err != nil {
		return OutboxPage{}, err
	}
	limit := clampLimit(q.Limit)
	var (
		b    strings.Builder
		args = []any{q.ActorID}
	)
	b.WriteString(`SELECT ` + activityColumns + ` FROM activities WHERE actor_id = ?`)
	if q.Cursor != "" {
		key, err := decodeCursor(q.Cursor, 2)
		if err != nil {
			return OutboxPage{}, err
		}
		// A row-value comparison: both engines turn it into one index range seek.
		b.WriteString(` AND (published, seq) < (?, ?)`)
		args = append(args, key[0], key[1])
	}
	b.WriteString(` AND visibility IN (` + placeholders(len(visArgs)) + `)`)
	args = append(args, visArgs...)
	b.WriteString(` ORDER BY published DESC, seq DESC LIMIT ?`)
	args = append(args, limit+1)

	rows, err := s.query(ctx, b.String(), args...)
	if err != nil {
		return OutboxPage{}, fmt.Errorf("store: list outbox of %s: %w", q.ActorID, err)
	}
	defer rows.Close()
	var (
		page OutboxPage
		last [2]int64
	)
	for rows.Next() {
		a, seq, err := scanActivity(rows)
		if err != nil {
			return OutboxPage{}, fmt.Errorf("store: list outbox of %s: %w", q.ActorID, err)
		}
		if len(page.Items) == limit {
			page.Next = encodeCursor(last[0], last[1])
			break
		}
		page.Items = append(page.Items, a)
		last = [2]int64{micros(a.Published), seq}
	}
	if err := rows.Err(); err != nil {
		return OutboxPage{}, fmt.Errorf("store: list outbox of %s: %w", q.ActorID, err)
	}
	return page, nil
}

// CountOutbox implements Store by summing at most four counter rows.
func (s *sqlStore) CountOutbox(ctx context.Context, actorID string, vis ...Visibility) (int64, error) {
	visArgs, err := visibilityArgs(vis)
	if err != nil {
		return 0, err
	}
	var n sql.NullInt64
	err = s.queryRow(ctx, `SELECT CAST(SUM(n) AS BIGINT) FROM outbox_counts WHERE actor_id = ? AND visibility IN (`+
		placeholders(len(visArgs))+`)`, append([]any{actorID}, visArgs...)...).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("store: count outbox of %s: %w", actorID, err)
	}
	return n.Int64, nil
}

// utcNow is the wall clock for bookkeeping columns the caller does not supply.
func utcNow() time.Time { return time.Now().UTC() }
