package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// failCommits makes every COMMIT of a transaction that inserted a received row whose
// id contains marker fail, on both engines: a deferred constraint checked at COMMIT,
// so the statements succeed and the failure comes from the commit itself (SQLite: a
// deferred foreign key to nothing; PostgreSQL: a deferred constraint trigger).
func failCommits(t *testing.T, dsn, marker string) {
	t.Helper()
	db, eng := rawDB(t, dsn)
	stmts := []string{
		`CREATE TABLE commit_guard_parent (id INTEGER PRIMARY KEY)`,
		`CREATE TABLE commit_guard (x INTEGER REFERENCES commit_guard_parent (id) DEFERRABLE INITIALLY DEFERRED)`,
		`CREATE TRIGGER commit_guard AFTER INSERT ON received WHEN NEW.id LIKE '%` + marker + `%'
			BEGIN INSERT INTO commit_guard (x) VALUES (-1); END`,
	}
	if eng == enginePostgres {
		stmts = []string{
			`CREATE FUNCTION commit_guard() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN RAISE EXCEPTION 'commit refused by the test'; END $$`,
			`CREATE CONSTRAINT TRIGGER commit_guard AFTER INSERT ON received DEFERRABLE INITIALLY DEFERRED
			FOR EACH ROW WHEN (NEW.id LIKE '%` + marker + `%') EXECUTE FUNCTION commit_guard()`,
		}
	}
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// neverLinger makes the writer wait for announced rows as long as it takes, so that
// the tests' batches cannot depend on timing.
func neverLinger(s Store) {
	s.(*sqlStore).received.lingerExpected = 24 * time.Hour
}

func TestReceivedGroupCommit(t *testing.T) {
	ctx := context.Background()
	runSuite(t, map[string]storeTest{
		"the writer waits for the announced rows: 128 announced rows make one full transaction": func(t *testing.T, s Store, _ string) {
			neverLinger(s) // so only the announcements and the full batch can end the wait
			l := s.(*sqlStore).received
			sizes := make(chan int, maxReceivedBatch)
			l.beforeBatch = func(n int) { sizes <- n }
			ctxs := make([]context.Context, maxReceivedBatch)
			for i := range ctxs {
				var release func()
				ctxs[i], release = s.ExpectReceived(ctx)
				defer release()
			}
			out := make(chan receivedResult, len(ctxs))
			for i := range ctxs {
				id := fmt.Sprintf("https://p/act/%d", i)
				go func() {
					isNew, err := s.RecordReceived(ctxs[i], received(id), []string{"https://h/a"})
					out <- receivedResult{id, isNew, err}
				}()
			}
			got := collect(t, out, len(ctxs))
			if n := <-sizes; n != maxReceivedBatch {
				t.Errorf("the first transaction held %d rows, want all %d announced", n, maxReceivedBatch)
			}
			for id, rs := range got {
				if r := rs[0]; r.err != nil || !r.isNew {
					t.Errorf("%s: %+v, want new", id, r)
				}
			}
		},
		"an announced request that ends without a row does not hold the others": func(t *testing.T, s Store, _ string) {
			l := s.(*sqlStore).received
			recorded, releaseRecorded := s.ExpectReceived(ctx)
			defer releaseRecorded()
			_, refused := s.ExpectReceived(ctx) // e.g. a request whose signature fails
			out := recordAsyncCtx(s, recorded, "https://p/act/kept")
			// Not waiting for the row to be pending first: the writer may already have
			// taken it after its 500 µs bound, and a wait for it then never ended (a
			// hang under make test's load). Either way the row must be written.
			refused()
			refused() // idempotent: a second release changes nothing
			if r := <-out; r.err != nil || !r.isNew {
				t.Errorf("the recorded row: %+v, want new", r)
			}
			if got := l.expected.Load(); got != 0 {
				t.Errorf("%d rows still announced, want 0", got)
			}
		},
		"a group transaction whose commit fails: every row in it fails, none is stored": func(t *testing.T, s Store, dsn string) {
			failCommits(t, dsn, "doomed")
			taken, release := holdWriter(s)
			defer release()
			first := recordAsync(s, nil, "https://p/act/before")
			<-taken // the writer holds a batch of one; the next rows wait together
			ids := []string{"https://p/act/doomed-1", "https://p/act/ok-1", "https://p/act/doomed-2", "https://p/act/ok-2"}
			rest := recordAsync(s, nil, ids...)
			waitPending(t, s, len(ids))
			release()
			if r := <-first; r.err != nil || !r.isNew {
				t.Errorf("the held row: %+v", r)
			}
			got := collect(t, rest, len(ids))
			for _, id := range ids {
				r := got[id][0]
				_, stored := s.GetReceived(ctx, id)
				switch doomed := id[len("https://p/act/"):][:2] == "do"; {
				case doomed && (r.err == nil || r.isNew):
					t.Errorf("%s: %+v, want an error (its commit failed)", id, r)
				case doomed && !errors.Is(stored, ErrNotFound):
					t.Errorf("%s is stored (%v) though its commit failed", id, stored)
				case !doomed && (r.err != nil || !r.isNew || stored != nil):
					// Rows of a failed group are retried one per transaction: a row
					// that commits alone is acknowledged with its row stored.
					t.Errorf("%s: %+v, stored: %v; want new and stored after its own transaction", id, r, stored)
				}
			}
		},
	})
}

// recordAsyncCtx is recordAsync for one id, with the caller's context.
func recordAsyncCtx(s Store, ctx context.Context, id string) <-chan receivedResult {
	out := make(chan receivedResult, 1)
	go func() {
		isNew, err := s.RecordReceived(ctx, received(id), nil)
		out <- receivedResult{id, isNew, err}
	}()
	return out
}
