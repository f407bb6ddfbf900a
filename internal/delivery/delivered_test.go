package delivery

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/fedforge/fedforge/internal/store"
)

// batchCountingStore is the real store, counting the marks written in batches and
// optionally failing every batch (a store error mid-transaction).
type batchCountingStore struct {
	store.Store
	fail bool

	mu             sync.Mutex
	batches, marks int
	single         int
	hostsUp        int // marks naming their host
	hostSuccesses  int // RecordHostSuccess calls
}

func (s *batchCountingStore) RecordHostSuccess(ctx context.Context, host string, at time.Time) error {
	s.mu.Lock()
	s.hostSuccesses++
	s.mu.Unlock()
	return s.Store.RecordHostSuccess(ctx, host, at)
}

func (s *batchCountingStore) MarkDeliveredBatch(ctx context.Context, marks []store.DeliveredMark) error {
	s.mu.Lock()
	s.batches++
	s.mu.Unlock()
	if s.fail {
		return errors.New("injected: batch refused")
	}
	if err := s.Store.MarkDeliveredBatch(ctx, marks); err != nil {
		return err
	}
	s.mu.Lock()
	s.marks += len(marks)
	for _, m := range marks {
		if m.HostUp != "" {
			s.hostsUp++
		}
	}
	s.mu.Unlock()
	return nil
}

func (s *batchCountingStore) MarkDelivered(ctx context.Context, id int64, at time.Time) error {
	s.mu.Lock()
	s.single++
	s.mu.Unlock()
	return s.Store.MarkDelivered(ctx, id, at)
}

// TestDeliveredAnswersAreBatched: every 2xx is recorded through the store's batch write
// (group commit), and none is sent again afterwards.
func TestDeliveredAnswersAreBatched(t *testing.T) {
	f := newFediverse(t, 4, "batch.test", nil)
	real, _ := newStore(t)
	s := &batchCountingStore{Store: real}
	c := newClock()
	e := newExecutor(t, s, f, c)
	to := f.followers(40, false)
	a := newActivity("batched", c.Now())
	if err := NewPublisher(s, e).Publish(context.Background(), a, to); err != nil {
		t.Fatal(err)
	}
	drain(t, e, s, c, time.Minute, 20)
	f.checkTargets(t, []string{a.ID}, to, true)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.marks != 40 || s.single != 0 || s.batches == 0 {
		t.Errorf("%d marks in %d batches and %d single writes; want all 40 in batches", s.marks, s.batches, s.single)
	}
	if st, err := real.QueueStats(context.Background(), c.Now()); err != nil || st.Delivered != 40 || st.Pending != 0 {
		t.Errorf("QueueStats = %+v, %v; want 40 delivered", st, err)
	}
}

// TestDeliveredFallsBackWhenABatchFails: a batch the store refuses is written row by row,
// so no answered row is left to be sent again.
func TestDeliveredFallsBackWhenABatchFails(t *testing.T) {
	f := newFediverse(t, 4, "batchfail.test", nil)
	real, _ := newStore(t)
	s := &batchCountingStore{Store: real, fail: true}
	c := newClock()
	e := newExecutor(t, s, f, c)
	to := f.followers(20, false)
	a := newActivity("batchfail", c.Now())
	if err := NewPublisher(s, e).Publish(context.Background(), a, to); err != nil {
		t.Fatal(err)
	}
	drain(t, e, s, c, time.Minute, 20)
	f.checkTargets(t, []string{a.ID}, to, true)
	if st, err := real.QueueStats(context.Background(), c.Now()); err != nil || st.Delivered != 20 || st.Pending != 0 {
		t.Errorf("QueueStats = %+v, %v; want 20 delivered", st, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.single != 20 {
		t.Errorf("%d single writes after failed batches, want 20", s.single)
	}
}

// TestHostSuccessRidesWithTheMarks: the first 2xx of each host with failures on record
// resets the host's state in the store within the round that marks the row, not in a
// transaction of its own (one per host: one per POST in a shared-inbox fan-out); when the
// round fails, the host's success is still written, after the row.
func TestHostSuccessRidesWithTheMarks(t *testing.T) {
	for _, fail := range []bool{false, true} {
		f := newFediverse(t, 4, "hostup.test", nil)
		real, _ := newStore(t)
		s := &batchCountingStore{Store: real, fail: fail}
		c := newClock()
		ctx := context.Background()
		for i := range f.peers {
			if _, err := real.RecordHostFailure(ctx, f.host(i), c.Now().Add(-time.Hour), 7); err != nil {
				t.Fatal(err)
			}
		}
		e := newExecutor(t, s, f, c)
		to := f.followers(20, false)
		a := newActivity("hostup", c.Now())
		if err := NewPublisher(s, e).Publish(ctx, a, to); err != nil {
			t.Fatal(err)
		}
		drain(t, e, s, c, time.Minute, 20)
		f.checkTargets(t, []string{a.ID}, to, true)
		for i := range f.peers {
			st, err := real.RecordHostFailure(ctx, f.host(i), c.Now(), 7)
			if err != nil || st.ConsecutiveFailures != 1 {
				t.Errorf("fail=%v: %s's failure after its 2xx = %+v, %v; want counted from zero", fail, f.host(i), st, err)
			}
		}
		s.mu.Lock()
		want := [2]int{len(f.peers), 0} // in the marks, no call of its own
		if fail {
			want = [2]int{0, len(f.peers)}
		}
		if got := [2]int{s.hostsUp, s.hostSuccesses}; got != want {
			t.Errorf("fail=%v: %d marks naming their host and %d RecordHostSuccess calls, want %v", fail, got[0], got[1], want)
		}
		s.mu.Unlock()
	}
}

// TestDeliveredGroupWaitsForARoundToFill: the writer of a round waits for more answers
// before its commit, and a round that reaches max is written at once. The linger is an
// hour, so the test only ends because the round filled: three answers, one transaction.
func TestDeliveredGroupWaitsForARoundToFill(t *testing.T) {
	real, _ := newStore(t)
	s := &batchCountingStore{Store: real}
	ctx := context.Background()
	c := newClock()
	a := newActivity("linger", c.Now())
	if err := NewPublisher(s, nil).Publish(ctx, a, []Recipient{
		{Inbox: "http://a.test/inbox"}, {Inbox: "http://b.test/inbox"}, {Inbox: "http://c.test/inbox"},
	}); err != nil {
		t.Fatal(err)
	}
	rows, err := s.LeaseDeliveries(ctx, store.LeaseRequest{Now: c.Now(), Limit: 3, Lease: time.Minute, Owner: "w"})
	if err != nil || len(rows) != 3 {
		t.Fatalf("leased %d, %v", len(rows), err)
	}
	g := newDeliveredGroup(s, time.Hour, 3)
	g.begin() // a fourth worker, still sending: without it the round would not wait
	for range rows {
		g.begin()
	}
	var wg sync.WaitGroup
	for _, d := range rows {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := g.mark(ctx, store.DeliveredMark{ID: d.ID, At: c.Now()}, true); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if rounds, marks := g.stats(); rounds != 1 || marks != 3 {
		t.Errorf("%d rounds of %d marks, want 1 of 3", rounds, marks)
	}
	if st, err := real.QueueStats(ctx, c.Now()); err != nil || st.Delivered != 3 {
		t.Errorf("QueueStats = %+v, %v; want 3 delivered", st, err)
	}
}

// TestLastRoundDoesNotLinger: the writer of a round stops waiting for more answers as
// soon as no worker is left that could send one. With a linger of an hour, RunOnce of a
// few rows returns only because of that (before, its last round waited the whole
// linger: 5 ms at the end of every RunOnce, and for a lone delivery); a row answered
// 4xx settles its worker without a mark and must not hold the round either.
func TestLastRoundDoesNotLinger(t *testing.T) {
	f := newFediverse(t, 3, "linger.test", nil)
	real, _ := newStore(t)
	s := &batchCountingStore{Store: real}
	c := newClock()
	e := newExecutor(t, s, f, c)
	e.marks = newDeliveredGroup(s, time.Hour, e.cfg.Concurrency-1)
	f.peers[2].setMode(t, modeBadRequest)
	to := f.followers(3, false)
	a := newActivity("nolinger", c.Now())
	if err := NewPublisher(s, nil).Publish(context.Background(), a, to); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := e.RunOnce(context.Background())
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute): // a liveness bound, not a timing: the linger is an hour
		t.Fatal("RunOnce still waits: the last round lingers for answers no worker can send")
	}
	f.checkTargets(t, []string{a.ID}, to[:2], true)
	if got := e.Counts(); got.Delivered != 2 || got.GivenUp != 1 {
		t.Errorf("counts %+v, want 2 delivered and 1 given up", got)
	}
	if st, err := real.QueueStats(context.Background(), c.Now()); err != nil || st.Delivered != 2 {
		t.Errorf("QueueStats = %+v, %v; want 2 delivered", st, err)
	}
}
