package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
)

// TestOpenRefusesANewerSchema: a database that a newer Fedforge migrated (a migration
// number this binary does not have) is refused at Open with ErrSchemaTooNew, on both
// engines, and nothing is written to it.
func TestOpenRefusesANewerSchema(t *testing.T) {
	for _, e := range engines(t) {
		t.Run(e.name, func(t *testing.T) {
			dsn := e.dsn(t)
			s := openTest(t, dsn)
			ss := s.(*sqlStore)
			steps, err := ss.migrations()
			if err != nil {
				t.Fatal(err)
			}
			future := steps[len(steps)-1].version + 1
			if _, err := ss.w.ExecContext(context.Background(), ss.q(`INSERT INTO schema_migrations (version, name, applied) VALUES (?, ?, ?)`), future, "9999_future.sql", 1); err != nil {
				t.Fatal(err)
			}
			_, err = Open(context.Background(), dsn)
			if !errors.Is(err, ErrSchemaTooNew) {
				t.Fatalf("Open of a newer schema: %v, want ErrSchemaTooNew", err)
			}
			if !strings.Contains(err.Error(), "knows up to") {
				t.Errorf("error %q does not say which versions", err)
			}
			var n int
			if err := ss.w.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil && !errors.Is(err, sql.ErrNoRows) {
				t.Fatal(err)
			}
			if n != len(steps)+1 {
				t.Errorf("schema_migrations has %d rows after the refused Open, want %d", n, len(steps)+1)
			}
		})
	}
}
