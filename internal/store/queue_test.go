package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

func targets(n, hosts int) []DeliveryTarget {
	out := make([]DeliveryTarget, n)
	for i := range out {
		h := fmt.Sprintf("h%d.example", i%hosts)
		out[i] = DeliveryTarget{Inbox: fmt.Sprintf("https://%s/users/%d/inbox", h, i), Host: h}
	}
	return out
}

func lease(t *testing.T, s Store, now time.Time, owner string, limit int) []Delivery {
	t.Helper()
	ds, err := s.LeaseDeliveries(context.Background(), LeaseRequest{Now: now, Limit: limit, Lease: time.Minute, Owner: owner})
	if err != nil {
		t.Fatalf("LeaseDeliveries(%s): %v", owner, err)
	}
	return ds
}

func TestQueueConformance(t *testing.T) {
	ctx := context.Background()
	runSuite(t, map[string]storeTest{
		"enqueue needs the activity and skips known targets": func(t *testing.T, s Store, _ string) {
			if _, err := s.EnqueueDeliveries(ctx, "https://h/a/activities/9", targets(1, 1), t0); !errors.Is(err, ErrNotFound) {
				t.Errorf("enqueue for unknown activity: %v, want ErrNotFound", err)
			}
			a := activity("https://h/a", 1, Public)
			mustAppend(t, s, a, targets(3, 3)...)
			n, err := s.EnqueueDeliveries(ctx, a.ID, targets(1200, 7), t0)
			if err != nil || n != 1197 {
				t.Fatalf("EnqueueDeliveries = %d, %v; want 1197 (3 already queued)", n, err)
			}
			st, err := s.QueueStats(ctx, t0)
			if err != nil || st.Pending != 1200 || st.Due != 1200 {
				t.Errorf("QueueStats = %+v, %v", st, err)
			}
			ds := lease(t, s, t0, "w", 5)
			if len(ds) != 5 || ds[0].ActorID != a.ActorID || ds[0].ActivityID != a.ID || ds[0].Attempt != 1 || ds[0].Host == "" {
				t.Errorf("leased %+v", ds)
			}
		},
		"delivery lifecycle: fail, retry, deliver, give up, prune": func(t *testing.T, s Store, _ string) {
			a := activity("https://h/a", 1, Public)
			mustAppend(t, s, a, targets(3, 3)...)
			ds := lease(t, s, t0, "w1", 10)
			if len(ds) != 3 {
				t.Fatalf("leased %d, want 3", len(ds))
			}
			if again := lease(t, s, t0.Add(30*time.Second), "w2", 10); len(again) != 0 {
				t.Fatalf("rows leased twice within the lease: %+v", again)
			}
			if err := s.MarkDelivered(ctx, ds[0].ID, t0); err != nil {
				t.Fatal(err)
			}
			if err := s.MarkDelivered(ctx, ds[0].ID, t0); err != nil {
				t.Errorf("MarkDelivered is not idempotent: %v", err)
			}
			if n, err := s.PendingDeliveries(ctx, a.ID); err != nil || n != 2 {
				t.Errorf("PendingDeliveries after one 2xx = %d, %v; want 2", n, err)
			}
			if err := s.MarkFailed(ctx, ds[1].ID, "w1", t0.Add(time.Hour), "503 Service Unavailable"); err != nil {
				t.Fatal(err)
			}
			if err := s.GiveUp(ctx, ds[2].ID, "w1", t0, "404 Not Found"); err != nil {
				t.Fatal(err)
			}
			if err := s.MarkFailed(ctx, ds[1].ID, "w1", t0, "again"); !errors.Is(err, ErrLeaseLost) {
				t.Errorf("MarkFailed on a released row: %v, want ErrLeaseLost", err)
			}
			st, _ := s.QueueStats(ctx, t0.Add(2*time.Minute))
			if st != (QueueStats{Pending: 1, Due: 0, Retrying: 1, Delivered: 1, Dead: 1}) {
				t.Errorf("QueueStats = %+v", st)
			}
			if ds := lease(t, s, t0.Add(59*time.Minute), "w1", 10); len(ds) != 0 {
				t.Errorf("retry leased before its time: %+v", ds)
			}
			retry := lease(t, s, t0.Add(time.Hour), "w3", 10)
			if len(retry) != 1 || retry[0].ID != ds[1].ID || retry[0].Attempt != 2 || retry[0].LastError != "503 Service Unavailable" {
				t.Fatalf("retry = %+v", retry)
			}
			if err := s.MarkDelivered(ctx, retry[0].ID, t0.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			if n, err := s.PendingDeliveries(ctx, a.ID); err != nil || n != 0 {
				t.Errorf("PendingDeliveries when all are finished = %d, %v; want 0", n, err)
			}
			if err := s.MarkDelivered(ctx, 1<<40, t0); !errors.Is(err, ErrNotFound) {
				t.Errorf("MarkDelivered(unknown) = %v, want ErrNotFound", err)
			}
			if n, err := s.EnqueueDeliveries(ctx, a.ID, targets(3, 3), t0); err != nil || n != 0 {
				t.Errorf("re-enqueue after 2xx/dead added %d rows (%v); an inbox that answered must not get it twice", n, err)
			}
			// The first delivered row and the dead row finished at t0; the retry an hour later.
			n, err := s.PruneDeliveries(ctx, t0.Add(30*time.Minute))
			if err != nil || n != 2 {
				t.Errorf("PruneDeliveries = %d, %v; want 2", n, err)
			}
			if st, _ := s.QueueStats(ctx, t0); st != (QueueStats{Delivered: 1}) {
				t.Errorf("after prune QueueStats = %+v", st)
			}
		},
		"crash safety: an expired lease comes back, a delivered row never does": func(t *testing.T, s Store, _ string) {
			a := activity("https://h/a", 1, Public)
			mustAppend(t, s, a, targets(10, 2)...)
			leased := lease(t, s, t0, "killed-worker", 10)
			if len(leased) != 10 {
				t.Fatalf("leased %d", len(leased))
			}
			for _, d := range leased[:4] {
				if err := s.MarkDelivered(ctx, d.ID, t0); err != nil {
					t.Fatal(err)
				}
			}
			// The worker is SIGKILLed here: six rows are leased and never reported.
			if ds := lease(t, s, t0.Add(59*time.Second), "survivor", 100); len(ds) != 0 {
				t.Fatalf("rows came back before the lease expired: %d", len(ds))
			}
			back := lease(t, s, t0.Add(time.Minute), "survivor", 100)
			if len(back) != 6 {
				t.Fatalf("after expiry %d rows came back, want the 6 unreported ones", len(back))
			}
			for i, d := range back {
				if d.ID != leased[4+i].ID || d.Attempt != 2 || d.LeaseOwner != "survivor" {
					t.Errorf("came back: %+v, want row %d attempt 2", d, leased[4+i].ID)
				}
			}
			// The dead worker's late failure report cannot undo the survivor's lease.
			if err := s.MarkFailed(ctx, back[0].ID, "killed-worker", t0, "late"); !errors.Is(err, ErrLeaseLost) {
				t.Errorf("stale MarkFailed = %v, want ErrLeaseLost", err)
			}
			for _, d := range back {
				if err := s.MarkDelivered(ctx, d.ID, t0.Add(time.Minute)); err != nil {
					t.Fatal(err)
				}
			}
			if ds := lease(t, s, t0.Add(365*24*time.Hour), "later", 100); len(ds) != 0 {
				t.Errorf("delivered rows came back: %+v", ds)
			}
		},
		"concurrent workers never lease the same row": func(t *testing.T, s Store, _ string) {
			a := activity("https://h/a", 1, Public)
			mustAppend(t, s, a, targets(600, 50)...)
			var (
				mu   sync.Mutex
				seen = map[int64]string{}
				wg   sync.WaitGroup
				errs = make(chan error, 8)
			)
			for w := 0; w < 6; w++ {
				wg.Add(1)
				go func(owner string) {
					defer wg.Done()
					for {
						ds, err := s.LeaseDeliveries(ctx, LeaseRequest{Now: t0, Limit: 7, Lease: time.Hour, Owner: owner})
						if err != nil {
							errs <- err
							return
						}
						if len(ds) == 0 {
							return
						}
						mu.Lock()
						for _, d := range ds {
							if prev, dup := seen[d.ID]; dup {
								errs <- fmt.Errorf("row %d leased by %s and %s", d.ID, prev, owner)
							}
							seen[d.ID] = owner
						}
						mu.Unlock()
						for _, d := range ds {
							if err := s.MarkDelivered(ctx, d.ID, t0); err != nil {
								errs <- err
								return
							}
						}
					}
				}(fmt.Sprintf("w%d", w))
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			if len(seen) != 600 {
				t.Errorf("leased %d distinct rows, want 600", len(seen))
			}
		},
		"host state: distinct failure days, unavailable, back on success": func(t *testing.T, s Store, _ string) {
			if st, err := s.GetHostState(ctx, "new.example"); err != nil || st.Unavailable || st.Host != "new.example" {
				t.Errorf("unknown host = %+v, %v", st, err)
			}
			var st HostState
			var err error
			for day := 0; day < 3; day++ {
				for i := 0; i < 4; i++ { // several failures a day count as one day
					at := t0.Add(time.Duration(day)*24*time.Hour + time.Duration(i)*time.Hour)
					if st, err = s.RecordHostFailure(ctx, "down.example", at, 3); err != nil {
						t.Fatal(err)
					}
				}
				if want := day == 2; st.Unavailable != want || st.FailureDays != day+1 {
					t.Errorf("day %d: %+v", day, st)
				}
			}
			if st.ConsecutiveFailures != 12 || !st.LastFailure.Equal(t0.Add(51*time.Hour)) {
				t.Errorf("after 3 days: %+v", st)
			}
			list, err := s.ListUnavailableHosts(ctx)
			if err != nil || len(list) != 1 || list[0].Host != "down.example" {
				t.Errorf("ListUnavailableHosts = %+v, %v", list, err)
			}
			if err := s.RecordHostSuccess(ctx, "down.example", t0.Add(72*time.Hour)); err != nil {
				t.Fatal(err)
			}
			st, err = s.GetHostState(ctx, "down.example")
			if err != nil || st.Unavailable || st.ConsecutiveFailures != 0 || st.FailureDays != 0 || !st.LastSuccess.Equal(t0.Add(72*time.Hour)) {
				t.Errorf("after success: %+v, %v", st, err)
			}
			if list, _ := s.ListUnavailableHosts(ctx); len(list) != 0 {
				t.Errorf("still unavailable: %+v", list)
			}
		},
	})
}
