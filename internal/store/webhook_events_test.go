package store

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestWebhookEventsConformance: the webhook queue behaves the same on SQLite and
// PostgreSQL: a delivery id is recorded once per lane, a lane is leased head first, a
// retried head holds its lane back, and a dead or done row lets it move on.
func TestWebhookEventsConformance(t *testing.T) {
	ctx := context.Background()
	ev := func(user, src, delivery, body string) WebhookEvent {
		return WebhookEvent{Username: user, Source: src, DeliveryID: delivery, Actor: "ns/" + user, Forge: "Gitea",
			Payload: json.RawMessage(`{"n":"` + body + `"}`)}
	}
	lease := func(t *testing.T, s Store, owner string, at time.Time) []WebhookEvent {
		t.Helper()
		got, err := s.LeaseWebhookEvents(ctx, LeaseRequest{Owner: owner, Limit: 10, Lease: time.Minute, Now: at})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	ids := func(es []WebhookEvent) []int64 {
		var out []int64
		for _, e := range es {
			out = append(out, e.ID)
		}
		return out
	}
	runSuite(t, map[string]storeTest{
		"a redelivered delivery id is recorded once, per lane": func(t *testing.T, s Store, _ string) {
			first, created, err := s.EnqueueWebhookEvent(ctx, ev("a", "gitea", "d-1", "first"), t0)
			if err != nil || !created || first.State != WebhookEventPending || first.DeliveryID != "d-1" || first.Actor != "ns/a" ||
				!first.Received.Equal(t0) || string(first.Payload) != `{"n":"first"}` {
				t.Fatalf("first: %+v %t %v", first, created, err)
			}
			again, created, err := s.EnqueueWebhookEvent(ctx, ev("a", "gitea", "d-1", "again"), t0.Add(time.Second))
			if err != nil || created || again.ID != first.ID || string(again.Payload) != `{"n":"first"}` {
				t.Fatalf("redelivery: %+v %t %v; want the first row, not created", again, created, err)
			}
			other, created, err := s.EnqueueWebhookEvent(ctx, ev("a", "other", "d-1", "x"), t0)
			if err != nil || !created || other.ID == first.ID {
				t.Fatalf("same delivery id in another lane: %+v %t %v", other, created, err)
			}
			for range 2 { // no delivery id: never deduplicated
				if _, created, err := s.EnqueueWebhookEvent(ctx, ev("a", "gitea", "", "x"), t0); err != nil || !created {
					t.Fatalf("without a delivery id: %t %v", created, err)
				}
			}
			if st, err := s.WebhookEventStats(ctx); err != nil || st.Pending != 4 || !st.OldestPending.Equal(t0) {
				t.Fatalf("stats %+v %v", st, err)
			}
			if _, _, err := s.EnqueueWebhookEvent(ctx, WebhookEvent{Username: "a", Source: "s"}, t0); err == nil {
				t.Error("an event without payload was queued")
			}
		},
		"a lane is leased head first, in arrival order": func(t *testing.T, s Store, _ string) {
			var a []WebhookEvent
			for _, d := range []string{"1", "2", "3"} {
				e, _, err := s.EnqueueWebhookEvent(ctx, ev("a", "gitea", d, d), t0)
				if err != nil {
					t.Fatal(err)
				}
				a = append(a, e)
			}
			b, _, _ := s.EnqueueWebhookEvent(ctx, ev("b", "gitea", "1", "b"), t0)
			got := lease(t, s, "w1", t0)
			if want := []int64{a[0].ID, b.ID}; !equalIDs(ids(got), want) || got[0].Attempt != 1 || got[0].LeaseOwner != "w1" {
				t.Fatalf("first lease %v (%+v), want the head of each lane %v", ids(got), got, want)
			}
			if got := lease(t, s, "w2", t0); len(got) != 0 {
				t.Fatalf("a second worker leased %v while the heads are held", ids(got))
			}
			// The head fails: its lane waits for the retry, the other lane goes on.
			if err := s.RetryWebhookEvent(ctx, a[0].ID, "w1", t0.Add(time.Hour), "forge down"); err != nil {
				t.Fatal(err)
			}
			if err := s.FinishWebhookEvent(ctx, b.ID, "w1", t0); err != nil {
				t.Fatal(err)
			}
			if got := lease(t, s, "w2", t0.Add(time.Minute)); len(got) != 0 {
				t.Fatalf("leased %v behind a head waiting for its retry", ids(got))
			}
			got = lease(t, s, "w2", t0.Add(time.Hour))
			if len(got) != 1 || got[0].ID != a[0].ID || got[0].Attempt != 2 || got[0].LastError != "forge down" {
				t.Fatalf("retry lease %+v, want the head again on attempt 2", got)
			}
			if err := s.FinishWebhookEvent(ctx, a[0].ID, "w1", t0); !errors.Is(err, ErrLeaseLost) {
				t.Fatalf("finish by a worker that lost the lease: %v", err)
			}
			if err := s.GiveUpWebhookEvent(ctx, a[0].ID, "w2", t0.Add(time.Hour), "cannot render"); err != nil {
				t.Fatal(err)
			}
			if got := lease(t, s, "w2", t0.Add(time.Hour)); len(got) != 1 || got[0].ID != a[1].ID {
				t.Fatalf("after the head died: %v, want %d", ids(got), a[1].ID)
			}
			if err := s.FinishWebhookEvent(ctx, a[1].ID, "w2", t0.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			if got := lease(t, s, "w2", t0.Add(time.Hour)); len(got) != 1 || got[0].ID != a[2].ID {
				t.Fatalf("after the second: %v, want %d", ids(got), a[2].ID)
			}
			dead, err := s.GetWebhookEvent(ctx, a[0].ID)
			if err != nil || dead.State != WebhookEventDead || dead.LastError != "cannot render" {
				t.Fatalf("dead row %+v %v", dead, err)
			}
			if st, err := s.WebhookEventStats(ctx); err != nil || st.Pending != 1 || st.Dead != 1 {
				t.Fatalf("stats %+v %v", st, err)
			}
		},
		"concurrent workers never share a row nor run two rows of a lane at once": func(t *testing.T, s Store, _ string) {
			lanes := []string{"a", "b", "c", "d", "e"}
			for i := range 4 {
				for _, l := range lanes {
					if _, _, err := s.EnqueueWebhookEvent(ctx, ev(l, "gitea", string(rune('0'+i)), "x"), t0); err != nil {
						t.Fatal(err)
					}
				}
			}
			var mu sync.Mutex
			held := map[string]int64{}    // lane -> row held now
			order := map[string][]int64{} // lane -> rows in the order they were leased
			var wg sync.WaitGroup
			for w := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					owner := string(rune('A' + w))
					for idle := 0; idle < 50; {
						got, err := s.LeaseWebhookEvents(ctx, LeaseRequest{Now: t0, Limit: 2, Lease: time.Hour, Owner: owner})
						if err != nil {
							t.Error(err)
							return
						}
						if len(got) == 0 {
							idle++ // other workers may still free a lane's next row
							time.Sleep(time.Millisecond)
							continue
						}
						idle = 0
						mu.Lock()
						for _, g := range got {
							if h := held[g.Username]; h != 0 {
								t.Errorf("lane %s: row %d leased by %s while row %d is held", g.Username, g.ID, owner, h)
							}
							held[g.Username] = g.ID
							order[g.Username] = append(order[g.Username], g.ID)
						}
						mu.Unlock()
						for _, g := range got {
							mu.Lock()
							held[g.Username] = 0 // before the row is finished, when its successor may be leased
							mu.Unlock()
							if err := s.FinishWebhookEvent(ctx, g.ID, owner, t0); err != nil {
								t.Error(err)
							}
						}
					}
				}()
			}
			wg.Wait()
			for _, l := range lanes {
				if got := order[l]; len(got) != 4 || !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != 4 {
					t.Errorf("lane %s ran rows %v, want its 4 rows once each in id order", l, got)
				}
			}
		},
		"an expired lease makes the head due again": func(t *testing.T, s Store, _ string) {
			e, _, _ := s.EnqueueWebhookEvent(ctx, ev("a", "gitea", "1", "x"), t0)
			if got := lease(t, s, "w1", t0); len(got) != 1 {
				t.Fatalf("lease %v", ids(got))
			}
			got := lease(t, s, "w2", t0.Add(2*time.Minute))
			if len(got) != 1 || got[0].ID != e.ID || got[0].LeaseOwner != "w2" {
				t.Fatalf("after the lease expired: %+v", got)
			}
			if err := s.RetryWebhookEvent(ctx, e.ID, "w1", t0, "late"); !errors.Is(err, ErrLeaseLost) {
				t.Fatalf("retry by the first worker: %v", err)
			}
		},
		"done and dead rows are pruned, and a redelivery is then recorded anew": func(t *testing.T, s Store, _ string) {
			e, _, _ := s.EnqueueWebhookEvent(ctx, ev("a", "gitea", "1", "x"), t0)
			p, _, _ := s.EnqueueWebhookEvent(ctx, ev("b", "gitea", "1", "x"), t0)
			lease(t, s, "w", t0)
			if err := s.FinishWebhookEvent(ctx, e.ID, "w", t0); err != nil {
				t.Fatal(err)
			}
			if n, err := s.PruneWebhookEvents(ctx, t0.Add(time.Second)); err != nil || n != 1 {
				t.Fatalf("pruned %d %v, want 1 (the pending row stays)", n, err)
			}
			if _, err := s.GetWebhookEvent(ctx, p.ID); err != nil {
				t.Fatalf("pending row pruned: %v", err)
			}
			if _, err := s.GetWebhookEvent(ctx, e.ID); !errors.Is(err, ErrNotFound) {
				t.Fatalf("pruned row: %v", err)
			}
			if _, created, err := s.EnqueueWebhookEvent(ctx, ev("a", "gitea", "1", "x"), t0); err != nil || !created {
				t.Fatalf("redelivery after the prune: %t %v", created, err)
			}
		},
	})
}

func equalIDs(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
