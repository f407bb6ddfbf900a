package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	_ "modernc.org/sqlite"             // registers the "sqlite" database/sql driver (pure Go)
)

// engine names the SQL dialect a store speaks; the few statements that differ
// between engines branch on it.
type engine int

const (
	engineSQLite engine = iota
	enginePostgres
)

// Open connects to the store named by dsn, applies pending migrations and returns it.
// dsn is `sqlite:///abs/path/file.db`, `sqlite://rel/path.db`, a plain file path
// (SQLite), or `postgres://` / `postgresql://` (PostgreSQL through pgx).
func Open(ctx context.Context, dsn string) (Store, error) {
	var (
		s   *sqlStore
		err error
	)
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		s, err = openPostgres(ctx, dsn)
	case dsn == "":
		return nil, errors.New("store: empty dsn")
	default:
		s, err = openSQLite(ctx, strings.TrimPrefix(dsn, "sqlite://"))
	}
	if err != nil {
		return nil, err
	}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	s.received = newReceivedLog(s)
	return s, nil
}

// openSQLite opens a file with a single writer connection (BEGIN IMMEDIATE, so a
// read-then-write transaction never fails with SQLITE_BUSY on upgrade) and a pool of
// readers; WAL lets the readers run beside the writer.
func openSQLite(ctx context.Context, path string) (*sqlStore, error) {
	path, query, _ := strings.Cut(path, "?")
	if path == "" {
		return nil, errors.New("store: sqlite dsn has no path")
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("store: create directory for %s: %w", path, err)
		}
	}
	params := url.Values{}
	if query != "" {
		extra, err := url.ParseQuery(query)
		if err != nil {
			return nil, fmt.Errorf("store: sqlite dsn query: %w", err)
		}
		params = extra
	}
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "foreign_keys(1)", "synchronous(NORMAL)"} {
		params.Add("_pragma", p)
	}
	params.Set("_txlock", "immediate")
	u := (&url.URL{Scheme: "file", Opaque: path, RawQuery: params.Encode()}).String()

	w, err := sql.Open("sqlite", u)
	if err != nil {
		return nil, fmt.Errorf("store: open sqlite %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("store: open sqlite %s: %w", path, err)
	}
	params.Set("_txlock", "deferred")
	params.Add("_pragma", "query_only(1)")
	r, err := sql.Open("sqlite", (&url.URL{Scheme: "file", Opaque: path, RawQuery: params.Encode()}).String())
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("store: open sqlite %s: %w", path, err)
	}
	r.SetMaxOpenConns(4)
	r.SetMaxIdleConns(4)
	return &sqlStore{eng: engineSQLite, w: w, r: r}, nil
}

// openPostgres opens a pgx-backed pool; PostgreSQL handles concurrent writers itself.
func openPostgres(ctx context.Context, dsn string) (*sqlStore, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open postgres: %w", err)
	}
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(8)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: connect postgres: %w", err)
	}
	return &sqlStore{eng: enginePostgres, w: db, r: db}, nil
}
