package store

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// receivedResult is what one RecordReceived call returned.
type receivedResult struct {
	id    string
	isNew bool
	err   error
}

func received(id string) Received {
	return Received{ID: id, ActorID: "https://p/u", Type: "Create", ReceivedAt: t0, Raw: json.RawMessage(`{"id":"` + id + `"}`)}
}

// recordAsync starts RecordReceived for each id and returns the channel of results.
func recordAsync(s Store, recipients []string, ids ...string) <-chan receivedResult {
	out := make(chan receivedResult, len(ids))
	for _, id := range ids {
		go func() {
			isNew, err := s.RecordReceived(context.Background(), received(id), recipients)
			out <- receivedResult{id, isNew, err}
		}()
	}
	return out
}

func collect(t *testing.T, ch <-chan receivedResult, n int) map[string][]receivedResult {
	t.Helper()
	got := map[string][]receivedResult{}
	for range n {
		r := <-ch
		got[r.id] = append(got[r.id], r)
	}
	return got
}

// holdWriter makes the received log's writer stop before its first batch until the
// returned release is called; taken receives that batch's size.
func holdWriter(s Store) (taken <-chan int, release func()) {
	l := s.(*sqlStore).received
	ch, hold := make(chan int, 1), make(chan struct{})
	var once sync.Once
	l.beforeBatch = func(n int) {
		once.Do(func() {
			ch <- n
			<-hold
		})
	}
	return ch, sync.OnceFunc(func() { close(hold) })
}

// waitPending waits until n rows wait for the writer; the bound only keeps a broken
// test from spinning for ever (a writer that took the rows leaves none pending).
func waitPending(t testing.TB, s Store, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for s.(*sqlStore).received.pendingLen() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d rows pending after 30 s, want %d", s.(*sqlStore).received.pendingLen(), n)
		}
		runtime.Gosched()
	}
}

// rawDB opens the database behind a test DSN directly, for what the Store API cannot
// do (install a trigger that refuses rows).
func rawDB(t *testing.T, dsn string) (*sql.DB, engine) {
	t.Helper()
	driver, source, eng := "sqlite", strings.TrimPrefix(dsn, "sqlite://"), engineSQLite
	if strings.HasPrefix(dsn, "postgres") {
		driver, source, eng = "pgx", dsn, enginePostgres
	}
	db, err := sql.Open(driver, source)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, eng
}

// refuseIDs makes the database refuse every received row whose id contains marker.
func refuseIDs(t *testing.T, dsn, marker string) {
	t.Helper()
	db, eng := rawDB(t, dsn)
	stmts := []string{`CREATE TRIGGER refuse_test BEFORE INSERT ON received WHEN NEW.id LIKE '%` + marker + `%'
		BEGIN SELECT RAISE(ABORT, 'refused by the test'); END`}
	if eng == enginePostgres {
		stmts = []string{
			`CREATE FUNCTION refuse_test() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN IF NEW.id LIKE '%` + marker + `%' THEN RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$`,
			`CREATE TRIGGER refuse_test BEFORE INSERT ON received FOR EACH ROW EXECUTE FUNCTION refuse_test()`,
		}
	}
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// skipIDs makes the database skip, without an error, every received row whose id
// contains marker (a BEFORE trigger that ignores the row).
func skipIDs(t *testing.T, dsn, marker string) {
	t.Helper()
	db, eng := rawDB(t, dsn)
	stmts := []string{`CREATE TRIGGER skip_test BEFORE INSERT ON received WHEN NEW.id LIKE '%` + marker + `%'
		BEGIN SELECT RAISE(IGNORE); END`}
	if eng == enginePostgres {
		stmts = []string{
			`CREATE FUNCTION skip_test() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN IF NEW.id LIKE '%` + marker + `%' THEN RETURN NULL; END IF; RETURN NEW; END $$`,
			`CREATE TRIGGER skip_test BEFORE INSERT ON received FOR EACH ROW EXECUTE FUNCTION skip_test()`,
		}
	}
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func TestReceivedLog(t *testing.T) {
	ctx := context.Background()
	runSuite(t, map[string]storeTest{
		"concurrent copies of one id, through two stores: exactly one is new": func(t *testing.T, s Store, dsn string) {
			other := openTest(t, dsn)
			const copies = 32
			ch := make(chan receivedResult, copies)
			for i := range copies {
				st := []Store{s, other}[i%2]
				go func() {
					isNew, err := st.RecordReceived(ctx, received("https://p/act/dup"), []string{fmt.Sprintf("https://h/a%d", i%4)})
					ch <- receivedResult{"https://p/act/dup", isNew, err}
				}()
			}
			news := 0
			for _, r := range collect(t, ch, copies)["https://p/act/dup"] {
				if r.err != nil {
					t.Errorf("a copy failed instead of answering as a replay: %v", r.err)
				}
				if r.isNew {
					news++
				}
			}
			if news != 1 {
				t.Errorf("%d copies were new, want exactly 1", news)
			}
			for i := range 4 {
				p, err := s.ListReceived(ctx, fmt.Sprintf("https://h/a%d", i), "", 10)
				if err != nil || len(p.Items) != 1 {
					t.Errorf("recipient %d lists %d rows (%v), want the one activity", i, len(p.Items), err)
				}
			}
		},
		"one transaction for the rows waiting together, each with its own outcome": func(t *testing.T, s Store, _ string) {
			if _, err := s.RecordReceived(ctx, received("https://p/act/old"), nil); err != nil {
				t.Fatal(err)
			}
			taken, release := holdWriter(s)
			defer release()
			first := recordAsync(s, nil, "https://p/act/0")
			<-taken // the writer holds a batch of one; the next rows wait together
			ids := []string{"https://p/act/1", "https://p/act/2", "https://p/act/old", "https://p/act/2", "https://p/act/3"}
			rest := recordAsync(s, []string{"https://h/a"}, ids...)
			waitPending(t, s, len(ids))
			l := s.(*sqlStore).received
			batches := l.batches.Load()
			release()
			if r := <-first; r.err != nil || !r.isNew {
				t.Errorf("held row: %+v", r)
			}
			got := collect(t, rest, len(ids))
			if n := l.batches.Load() - batches; n != 2 {
				t.Errorf("%d transactions for the held row and the %d waiting, want 2", n, len(ids))
			}
			for _, id := range []string{"https://p/act/1", "https://p/act/3"} {
				if r := got[id][0]; r.err != nil || !r.isNew {
					t.Errorf("%s: %+v, want new", id, r)
				}
			}
			if r := got["https://p/act/old"][0]; r.err != nil || r.isNew {
				t.Errorf("a replay of a stored row: %+v, want not new", r)
			}
			if rs := got["https://p/act/2"]; len(rs) != 2 || rs[0].err != nil || rs[1].err != nil || rs[0].isNew == rs[1].isNew {
				t.Errorf("two copies in one batch: %+v, want one new", rs)
			}
			p, err := s.ListReceived(ctx, "https://h/a", "", 10)
			if err != nil || len(p.Items) != 4 {
				t.Errorf("the recipient lists %d rows (%v), want 4 (replays list too)", len(p.Items), err)
			}
		},
		"closing fails the rows still waiting and finishes the batch being written": func(t *testing.T, s Store, dsn string) {
			taken, release := holdWriter(s)
			defer release()
			held := recordAsync(s, []string{"https://h/a"}, "https://p/act/held")
			<-taken
			var waiting []string
			for i := range 8 {
				waiting = append(waiting, fmt.Sprintf("https://p/act/waiting/%d", i))
			}
			rest := recordAsync(s, nil, waiting...)
			waitPending(t, s, len(waiting))
			closed := make(chan error)
			go func() { closed <- s.Close() }()
			for id, rs := range collect(t, rest, len(waiting)) {
				if !errors.Is(rs[0].err, ErrClosed) {
					t.Errorf("%s, waiting when the store closed: %+v, want ErrClosed", id, rs[0])
				}
			}
			release()
			if r := <-held; r.err != nil || !r.isNew {
				t.Errorf("the row being written when the store closed: %+v, want committed", r)
			}
			if err := <-closed; err != nil {
				t.Errorf("Close: %v", err)
			}
			if _, err := s.RecordReceived(ctx, received("https://p/act/late"), nil); !errors.Is(err, ErrClosed) {
				t.Errorf("RecordReceived after Close: %v, want ErrClosed", err)
			}
			again := openTest(t, dsn)
			if _, err := again.GetReceived(ctx, "https://p/act/held"); err != nil {
				t.Errorf("the acknowledged row is gone after reopening: %v", err)
			}
			for _, id := range waiting {
				if _, err := again.GetReceived(ctx, id); !errors.Is(err, ErrNotFound) {
					t.Errorf("%s was refused with ErrClosed but is stored (%v)", id, err)
				}
			}
		},
		"a row the database refuses fails only its own caller": func(t *testing.T, s Store, dsn string) {
			refuseIDs(t, dsn, "refuse")
			taken, release := holdWriter(s)
			defer release()
			first := recordAsync(s, nil, "https://p/act/first")
			<-taken
			ids := []string{"https://p/act/a", "https://p/act/refuse-me", "https://p/act/b"}
			rest := recordAsync(s, []string{"https://h/a"}, ids...)
			waitPending(t, s, len(ids))
			release()
			<-first
			got := collect(t, rest, len(ids))
			if r := got["https://p/act/refuse-me"][0]; r.err == nil || !strings.Contains(r.err.Error(), "refused by the test") {
				t.Errorf("the refused row: %+v, want the database's error", r)
			}
			for _, id := range []string{"https://p/act/a", "https://p/act/b"} {
				if r := got[id][0]; r.err != nil || !r.isNew {
					t.Errorf("%s, in the same batch as a refused row: %+v, want stored", id, r)
				}
				if _, err := s.GetReceived(ctx, id); err != nil {
					t.Errorf("%s: %v", id, err)
				}
			}
			if _, err := s.GetReceived(ctx, "https://p/act/refuse-me"); !errors.Is(err, ErrNotFound) {
				t.Errorf("the refused row is stored: %v", err)
			}
		},
		"a row the database skips without an error fails its caller, never passes for a replay": func(t *testing.T, s Store, dsn string) {
			skipIDs(t, dsn, "skip")
			taken, release := holdWriter(s)
			defer release()
			first := recordAsync(s, nil, "https://p/act/first")
			<-taken
			ids := []string{"https://p/act/a", "https://p/act/skip-me", "https://p/act/b"}
			rest := recordAsync(s, nil, ids...) // no recipients: nothing else looks the row up
			waitPending(t, s, len(ids))
			release()
			<-first
			got := collect(t, rest, len(ids))
			if r := got["https://p/act/skip-me"][0]; r.err == nil {
				t.Errorf("the skipped row: %+v, want an error (its peer must retry, not get a 202)", r)
			}
			for _, id := range []string{"https://p/act/a", "https://p/act/b"} {
				if r := got[id][0]; r.err != nil || !r.isNew {
					t.Errorf("%s, in the same batch as a skipped row: %+v, want stored", id, r)
				}
			}
		},
		"a batch that cannot be written fails every caller": func(t *testing.T, s Store, dsn string) {
			refuseIDs(t, dsn, "/")
			taken, release := holdWriter(s)
			defer release()
			first := recordAsync(s, nil, "https://p/act/first")
			<-taken
			ids := []string{"https://p/act/a", "https://p/act/b", "https://p/act/c", "https://p/act/b"}
			rest := recordAsync(s, []string{"https://h/a"}, ids...)
			waitPending(t, s, len(ids))
			release()
			if r := <-first; r.err == nil {
				t.Errorf("the held row: %+v, want an error", r)
			}
			for id, rs := range collect(t, rest, len(ids)) {
				for _, r := range rs {
					if r.err == nil || r.isNew {
						t.Errorf("%s: %+v, want an error", id, r)
					}
				}
			}
			p, err := s.ListReceived(ctx, "https://h/a", "", 10)
			if err != nil || len(p.Items) != 0 {
				t.Errorf("the recipient lists %d rows (%v), want none", len(p.Items), err)
			}
		},
	})
}

// crashChildEnv names the DSN a TestReceivedLogKill9 child writes to.
const crashChildEnv = "FEDFORGE_RECEIVED_CRASH_DSN"

// TestReceivedLogKill9: a process records rows from 16 goroutines and prints each id
// once RecordReceived returned it; it is killed with SIGKILL after a few hundred
// acknowledgements, in the middle of its group commits. Every acknowledged row must
// be in the store afterwards.
func TestReceivedLogKill9(t *testing.T) {
	if dsn := os.Getenv(crashChildEnv); dsn != "" {
		crashChild(dsn)
		return
	}
	for _, e := range engines(t) {
		t.Run(e.name, func(t *testing.T) {
			dsn := e.dsn(t)
			openTest(t, dsn).Close() // migrate once, before the child
			cmd := exec.Command(os.Args[0], "-test.run=^TestReceivedLogKill9$", "-test.count=1")
			cmd.Env = append(os.Environ(), crashChildEnv+"="+dsn)
			cmd.Stderr = os.Stderr
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var acked []string
			lines := bufio.NewScanner(out)
			for lines.Scan() {
				if id, ok := strings.CutPrefix(lines.Text(), "ack "); ok {
					acked = append(acked, id)
					if len(acked) == 500 {
						_ = cmd.Process.Kill()
					}
				}
			}
			_ = cmd.Wait()
			if len(acked) < 500 {
				t.Fatalf("the child acknowledged %d rows before it ended", len(acked))
			}
			s := openTest(t, dsn)
			for _, id := range acked {
				if _, err := s.GetReceived(context.Background(), id); err != nil {
					t.Errorf("acknowledged row %s lost after the kill: %v", id, err)
				}
			}
			t.Logf("%d rows acknowledged before or while the child was killed; all stored", len(acked))
		})
	}
}

// crashChild records rows until it is killed (at most a bounded number).
func crashChild(dsn string) {
	s, err := Open(context.Background(), dsn)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var mu sync.Mutex
	w := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				id := fmt.Sprintf("https://p/crash/%d/%d", g, i)
				if _, err := s.RecordReceived(context.Background(), received(id), []string{"https://h/a"}); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				mu.Lock()
				fmt.Fprintf(w, "ack %s\n", id)
				_ = w.Flush()
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	os.Exit(0)
}

func (r receivedResult) String() string {
	return fmt.Sprintf("{%s new=%v err=%v}", r.id, r.isNew, r.err)
}
