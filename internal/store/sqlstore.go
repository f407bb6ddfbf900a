package store

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// sqlStore implements Store on database/sql for both engines. Statements are written
// once with `?` placeholders and rebound to `$n` for PostgreSQL.
type sqlStore struct {
	eng engine
	// w runs every transaction that writes; for SQLite it has one connection.
	w *sql.DB
	// r runs read-only statements; for PostgreSQL it is w.
	r *sql.DB

	rebound sync.Map // string -> string, PostgreSQL placeholder rewrites

	// received group-commits RecordReceived (received_log.go).
	received *receivedLog
}

var _ Store = (*sqlStore)(nil)

// Close stops the received log's writer (rows still waiting fail with ErrClosed, the
// batch being written finishes) and closes both pools.
func (s *sqlStore) Close() error {
	if s.received != nil {
		s.received.close()
	}
	err := s.w.Close()
	if s.r != s.w {
		err = errors.Join(err, s.r.Close())
	}
	return err
}

// q returns the statement in the engine's placeholder syntax.
func (s *sqlStore) q(query string) string {
	if s.eng != enginePostgres {
		return query
	}
	if v, ok := s.rebound.Load(query); ok {
		return v.(string)
	}
	var b strings.Builder
	n := 0
	for _, c := range query {
		if c == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	out := b.String()
	s.rebound.Store(query, out)
	return out
}

// tx is the subset of *sql.Tx the method bodies use, with placeholder rebinding.
type tx struct {
	s  *sqlStore
	tx *sql.Tx
}

func (t tx) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return t.tx.ExecContext(ctx, t.s.q(query), args...)
}

func (t tx) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return t.tx.QueryContext(ctx, t.s.q(query), args...)
}

func (t tx) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	return t.tx.QueryRowContext(ctx, t.s.q(query), args...)
}

// inTx runs fn in a write transaction and commits it, or rolls back on error.
func (s *sqlStore) inTx(ctx context.Context, fn func(tx) error) error {
	sqlTx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	if err := fn(tx{s: s, tx: sqlTx}); err != nil {
		_ = sqlTx.Rollback()
		return err
	}
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	return nil
}

// read runs a single read-only statement on the reader pool.
func (s *sqlStore) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	return s.r.QueryRowContext(ctx, s.q(query), args...)
}

func (s *sqlStore) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return s.r.QueryContext(ctx, s.q(query), args...)
}

// placeholders returns "?, ?, ?" for n arguments.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// micros converts a time to the stored form: UTC microseconds since the epoch.
// The zero time is stored as 0 so that "never" round-trips.
func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// fromMicros is the inverse of micros; times always come back in UTC.
func fromMicros(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}

// notFound maps sql.ErrNoRows to ErrNotFound and wraps other errors with what.
func notFound(err error, what string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return fmt.Errorf("store: %s: %w", what, err)
}

// encodeCursor makes an opaque keyset cursor from an ordering key; it is base64 so
// clients treat it as a token, not as a number to edit.
func encodeCursor(parts ...int64) string {
	var b []byte
	for i, p := range parts {
		if i > 0 {
			b = append(b, '.')
		}
		b = strconv.AppendInt(b, p, 10)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor parses a cursor made by encodeCursor with exactly n parts.
func decodeCursor(c string, n int) ([]int64, error) {
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return nil, ErrBadCursor
	}
	fields := strings.Split(string(raw), ".")
	if len(fields) != n {
		return nil, ErrBadCursor
	}
	out := make([]int64, n)
	for i, f := range fields {
		v, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return nil, ErrBadCursor
		}
		out[i] = v
	}
	return out, nil
}

// clampLimit keeps page sizes within what a single request should cost.
func clampLimit(n int) int {
	switch {
	case n <= 0:
		return 20
	case n > 500:
		return 500
	}
	return n
}
