package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
)

// postgresDSNEnv names the variable that points the tests at a real PostgreSQL.
const postgresDSNEnv = "FEDFORGE_TEST_POSTGRES_DSN"

// postgresOffEnv, set to "off", is the only way to run without PostgreSQL; `make test`
// never sets it, so a missing database fails loudly instead of skipping silently.
const postgresOffEnv = "FEDFORGE_TEST_POSTGRES"

// testEngine opens fresh, empty stores of one engine for one test each.
type testEngine struct {
	name string
	// dsn returns a DSN naming a fresh, empty database (or schema) for t; repeated
	// Opens of the same DSN share it.
	dsn func(t testing.TB) string
}

// engines returns SQLite and PostgreSQL; the PostgreSQL engine fails the test when
// no DSN is configured, unless explicitly turned off.
func engines(t testing.TB) []testEngine {
	out := []testEngine{{name: "sqlite", dsn: sqliteDSN}}
	switch {
	case os.Getenv(postgresDSNEnv) != "":
		out = append(out, testEngine{name: "postgres", dsn: postgresDSN})
	case os.Getenv(postgresOffEnv) == "off":
		t.Logf("PostgreSQL tests turned off by %s=off", postgresOffEnv)
	default:
		t.Fatalf("%s is not set: run `export %s=\"$(hack/test-postgres.sh)\"` first "+
			"(or set %s=off to run the SQLite engine alone)", postgresDSNEnv, postgresDSNEnv, postgresOffEnv)
	}
	return out
}

func sqliteDSN(t testing.TB) string {
	return "sqlite://" + filepath.Join(t.TempDir(), "fedforge.db")
}

// postgresDSN creates a throwaway schema, dropped at cleanup, and returns a DSN whose
// search_path points at it, so every test starts from an empty database.
func postgresDSN(t testing.TB) string {
	base := os.Getenv(postgresDSNEnv)
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("open %s: %v", postgresDSNEnv, err)
	}
	t.Cleanup(func() { admin.Close() })
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "t_" + hex.EncodeToString(b)
	ctx := context.Background()
	if _, err := admin.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		t.Fatalf("create schema (is hack/test-postgres.sh running?): %v", err)
	}
	t.Cleanup(func() {
		if _, err := admin.ExecContext(context.Background(), `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse %s: %v", postgresDSNEnv, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// openTest opens a store on dsn and closes it at cleanup.
func openTest(t testing.TB, dsn string) Store {
	t.Helper()
	s, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
