package server

import (
	"bytes"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/keys"
	"github.com/fedforge/fedforge/internal/store"
)

// inboxEngines are the stores the inbox's durability tests run on: SQLite, and
// PostgreSQL from FEDFORGE_TEST_POSTGRES_DSN (hack/test-postgres.sh). Without that
// variable the test fails, unless FEDFORGE_TEST_POSTGRES=off (as the store package's
// tests do): a missing database is never a silent skip.
func inboxEngines(t *testing.T) []string {
	switch {
	case os.Getenv("FEDFORGE_TEST_POSTGRES_DSN") != "":
		return []string{"sqlite", "postgres"}
	case os.Getenv("FEDFORGE_TEST_POSTGRES") == "off":
		t.Log("PostgreSQL turned off by FEDFORGE_TEST_POSTGRES=off")
		return []string{"sqlite"}
	}
	t.Fatal(`FEDFORGE_TEST_POSTGRES_DSN is not set: export FEDFORGE_TEST_POSTGRES_DSN="$(hack/test-postgres.sh)"`)
	return nil
}

// inboxStoreDSN is a fresh, empty database of the engine for t (PostgreSQL: a
// throwaway schema, dropped at cleanup).
func inboxStoreDSN(t *testing.T, engine string) string {
	if engine == "sqlite" {
		return "sqlite://" + filepath.Join(t.TempDir(), "fedforge.db")
	}
	base := os.Getenv("FEDFORGE_TEST_POSTGRES_DSN")
	admin, err := sql.Open("pgx", base)
	must(t, err)
	t.Cleanup(func() { admin.Close() })
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "inbox_" + hex.EncodeToString(b)
	if _, err := admin.Exec(`CREATE SCHEMA ` + schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() { _, _ = admin.Exec(`DROP SCHEMA ` + schema + ` CASCADE`) })
	u, err := url.Parse(base)
	must(t, err)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// failReceivedCommits makes every COMMIT of a transaction holding a received row
// fail: a deferred constraint, checked at COMMIT after every statement succeeded.
func failReceivedCommits(t *testing.T, dsn string) {
	t.Helper()
	driver, source := "sqlite", strings.TrimPrefix(dsn, "sqlite://")
	stmts := []string{
		`CREATE TABLE commit_guard_parent (id INTEGER PRIMARY KEY)`,
		`CREATE TABLE commit_guard (x INTEGER REFERENCES commit_guard_parent (id) DEFERRABLE INITIALLY DEFERRED)`,
		`CREATE TRIGGER commit_guard AFTER INSERT ON received BEGIN INSERT INTO commit_guard (x) VALUES (-1); END`,
	}
	if strings.HasPrefix(dsn, "postgres") {
		driver, source = "pgx", dsn
		stmts = []string{
			`CREATE FUNCTION commit_guard() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN RAISE EXCEPTION 'commit refused by the test'; END $$`,
			`CREATE CONSTRAINT TRIGGER commit_guard AFTER INSERT ON received DEFERRABLE INITIALLY DEFERRED
			FOR EACH ROW EXECUTE FUNCTION commit_guard()`,
		}
	}
	db, err := sql.Open(driver, source)
	must(t, err)
	defer db.Close()
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// TestInboxAnswers202OnlyAfterCommit: concurrent signed POSTs of distinct activities
// over loopback HTTP share the received log's group commit. When the commit succeeds
// each is answered 202 with its row stored; when the transaction's COMMIT fails, every
// request in it is answered an error (and retried alone, fails again), none 202, and
// no row is stored. On SQLite and PostgreSQL.
func TestInboxAnswers202OnlyAfterCommit(t *testing.T) {
	cfg, _, scheme, ctx := startAPIServer(t, true)
	peer, err := keys.Generate()
	must(t, err)
	pem, err := keys.EncodePublic(peer.RSA.Public())
	must(t, err)
	const actor = "https://peer.example/users/alice"

	for _, engine := range inboxEngines(t) {
		for _, failing := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/commit fails=%v", engine, failing), func(t *testing.T) {
				dsn := inboxStoreDSN(t, engine)
				st, err := store.Open(ctx, dsn)
				must(t, err)
				t.Cleanup(func() { _ = st.Close() })
				if failing { // after Open: the migrations created the received table
					failReceivedCommits(t, dsn)
				}
				_, hs := serveInboxOn(t, ctx, cfg, scheme, st, actor, string(pem))

				const posts = 24
				ids := make([]string, posts)
				codes := make(chan int, posts)
				for i := range posts {
					ids[i] = fmt.Sprintf("https://peer.example/notes/%d/activity", i)
					body := []byte(`{"@context":"https://www.w3.org/ns/activitystreams","id":"` + ids[i] + `","type":"Create","actor":"` + actor +
						`","to":["https://www.w3.org/ns/activitystreams#Public"],"object":{"id":"https://peer.example/notes/` + fmt.Sprint(i) +
						`","type":"Note","content":"hello"}}`)
					r, err := http.NewRequest(http.MethodPost, hs.URL+"/inbox", bytes.NewReader(body))
					must(t, err)
					r.Host = testHost
					r.Header.Set("Content-Type", "application/activity+json")
					must(t, activitypub.SignCavage(r, body, peer.RSA, actor+"#main-key", activitypub.CavageOptions{}))
					go func() {
						resp, err := http.DefaultClient.Do(r)
						if err != nil {
							codes <- 0
							return
						}
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						codes <- resp.StatusCode
					}()
				}
				got := map[int]int{}
				for range posts {
					got[<-codes]++
				}
				want := map[int]int{http.StatusAccepted: posts}
				if failing {
					want = map[int]int{http.StatusInternalServerError: posts}
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("answers %v, want %v", got, want)
				}
				for _, id := range ids {
					_, err := st.GetReceived(ctx, id)
					if failing && !errors.Is(err, store.ErrNotFound) {
						t.Errorf("%s: GetReceived = %v, want not found (its commit failed)", id, err)
					}
					if !failing && err != nil {
						t.Errorf("%s answered 202 but not stored: %v", id, err)
					}
				}
			})
		}
	}
}
