package store

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// migrationsFS holds one numbered SQL file set per engine (NNNN_name.sql), embedded
// so that the binary carries its schema and needs no files beside it.
//
//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrationsFS embed.FS

// migrationLockKey is the PostgreSQL advisory lock that serialises migrations when
// several replicas start at once ("fedforge" in ASCII, as an int64).
const migrationLockKey int64 = 0x6665646665726765

// migration is one numbered schema step.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the engine's steps in version order.
func (s *sqlStore) migrations() ([]migration, error) {
	dir := "migrations/sqlite"
	if s.eng == enginePostgres {
		dir = "migrations/postgres"
	}
	entries, err := fs.ReadDir(migrationsFS, dir)
	if err != nil {
		return nil, fmt.Errorf("store: read migrations: %w", err)
	}
	var out []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("store: migration %s: name must start with a number and '_'", e.Name())
		}
		b, err := migrationsFS.ReadFile(path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("store: read migration %s: %w", e.Name(), err)
		}
		out = append(out, migration{version: v, name: e.Name(), sql: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i := 1; i < len(out); i++ {
		if out[i].version == out[i-1].version {
			return nil, fmt.Errorf("store: duplicate migration version %d", out[i].version)
		}
	}
	return out, nil
}

// migrate applies every pending migration in one transaction and records each in
// schema_migrations. On PostgreSQL the transaction first takes an advisory lock, so
// a second replica waits and then finds nothing to do; on SQLite the immediate
// transaction is the lock.
func (s *sqlStore) migrate(ctx context.Context) error {
	steps, err := s.migrations()
	if err != nil {
		return err
	}
	return s.inTx(ctx, func(t tx) error {
		if s.eng == enginePostgres {
			if _, err := t.exec(ctx, `SELECT pg_advisory_xact_lock(?)`, migrationLockKey); err != nil {
				return fmt.Errorf("store: migration lock: %w", err)
			}
		}
		if _, err := t.exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version BIGINT PRIMARY KEY,
			name    TEXT   NOT NULL,
			applied BIGINT NOT NULL)`); err != nil {
			return fmt.Errorf("store: create schema_migrations: %w", err)
		}
		applied := map[int]bool{}
		rows, err := t.query(ctx, `SELECT version FROM schema_migrations`)
		if err != nil {
			return fmt.Errorf("store: read schema_migrations: %w", err)
		}
		for rows.Next() {
			var v int
			if err := rows.Scan(&v); err != nil {
				rows.Close()
				return fmt.Errorf("store: read schema_migrations: %w", err)
			}
			applied[v] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("store: read schema_migrations: %w", err)
		}
		if err := newerSchema(applied, steps); err != nil {
			return err
		}
		for _, m := range steps {
			if applied[m.version] {
				continue
			}
			// Multi-statement scripts go through the raw Exec without arguments,
			// which both drivers run statement by statement.
			if _, err := t.tx.ExecContext(ctx, m.sql); err != nil {
				return fmt.Errorf("store: apply migration %s: %w", m.name, err)
			}
			if _, err := t.exec(ctx, `INSERT INTO schema_migrations (version, name, applied) VALUES (?, ?, ?)`,
				m.version, m.name, time.Now().UnixMicro()); err != nil {
				return fmt.Errorf("store: record migration %s: %w", m.name, err)
			}
		}
		return nil
	})
}

// ErrSchemaTooNew is returned by Open when the database was migrated by a newer Fedforge:
// this binary would not know the tables it must keep consistent, so it refuses to run
// rather than write beside them (a rollback of the binary keeps the data: roll forward,
// or restore the database from before the upgrade).
var ErrSchemaTooNew = errors.New("store: the database schema is newer than this Fedforge")

// newerSchema refuses a database holding a migration this binary does not have.
func newerSchema(applied map[int]bool, steps []migration) error {
	known := 0
	if len(steps) > 0 {
		known = steps[len(steps)-1].version
	}
	newest := 0
	for v := range applied {
		newest = max(newest, v)
	}
	if newest > known {
		return fmt.Errorf("%w: it has migration %d, this binary knows up to %d; run the Fedforge version that migrated it (or newer)", ErrSchemaTooNew, newest, known)
	}
	return nil
}
