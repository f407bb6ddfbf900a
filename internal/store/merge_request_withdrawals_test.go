package store

import (
	"context"
	"errors"
	"testing"
)

// TestMergeRequestWithdrawalsConformance: closing, reopening and withdrawing cross-instance
// merge requests behave the same on SQLite and PostgreSQL.
func TestMergeRequestWithdrawalsConformance(t *testing.T) {
	ctx := context.Background()
	const actor, origin = "https://a/actors/bob", "https://b/actors/alice"
	runSuite(t, map[string]storeTest{
		"closed by the origin, by the forge's people, reopened": func(t *testing.T, s Store, _ string) {
			id := actor + "/merge-requests/1"
			if err := s.PutMergeRequest(ctx, MergeRequestRecord{ID: id, ActorID: actor, Number: 1, OriginActor: origin,
				OriginRef: "refs/heads/fix", Branch: "federated/b/alice/fix"}); err != nil {
				t.Fatal(err)
			}
			step := func(what string, got bool, err error, want bool) {
				t.Helper()
				if err != nil || got != want {
					t.Fatalf("%s = %v, %v; want %v", what, got, err, want)
				}
			}
			on, err := s.OpenMergeRequestsOnBranch(ctx, actor, "federated/b/alice/fix")
			if err != nil || len(on) != 1 || on[0].ID != id {
				t.Fatalf("open on branch = %+v, %v", on, err)
			}
			c, err := s.ReopenWithdrawnMergeRequest(ctx, id)
			step("reopen of an open one", c, err, false)
			c, err = s.SetMergeRequestClosed(ctx, id, true, true)
			step("close by the origin", c, err, true)
			c, err = s.SetMergeRequestClosed(ctx, id, true, false)
			step("close again", c, err, false)
			if on, _ := s.OpenMergeRequestsOnBranch(ctx, actor, "federated/b/alice/fix"); len(on) != 0 {
				t.Fatalf("closed one listed open: %+v", on)
			}
			c, err = s.ReopenWithdrawnMergeRequest(ctx, id)
			step("reopen of the origin's close", c, err, true)
			c, err = s.SetMergeRequestClosed(ctx, id, true, false)
			step("close by the forge's people", c, err, true)
			c, err = s.ReopenWithdrawnMergeRequest(ctx, id)
			step("origin's reopen of the people's close", c, err, false)
			c, err = s.SetMergeRequestClosed(ctx, id, false, false)
			step("reopen in the forge", c, err, true)
			if m, err := s.GetMergeRequest(ctx, id); err != nil || m.Closed {
				t.Fatalf("after reopen: %+v, %v", m, err)
			}
			if _, err := s.SetMergeRequestClosed(ctx, actor+"/missing", true, true); !errors.Is(err, ErrNotFound) {
				t.Errorf("missing row: %v, want ErrNotFound", err)
			}
		},
		"an offer withdrawn and back": func(t *testing.T, s Store, _ string) {
			m := OfferedMergeRequest{ActorID: origin, Number: 3, UpstreamID: actor, OfferID: origin + "/activities/offer-3", Head: "fix", Base: "main"}
			if _, err := s.RecordMergeRequestOffer(ctx, m); err != nil {
				t.Fatal(err)
			}
			if w, err := s.OfferWithdrawn(ctx, m.OfferID); err != nil || w {
				t.Fatalf("new offer withdrawn = %v, %v", w, err)
			}
			for i, want := range []struct{ set, changed bool }{{true, true}, {true, false}, {false, true}, {false, false}} {
				c, err := s.SetOfferWithdrawn(ctx, m.OfferID, want.set)
				if err != nil || c != want.changed {
					t.Fatalf("step %d: SetOfferWithdrawn(%v) = %v, %v; want %v", i, want.set, c, err, want.changed)
				}
				if w, err := s.OfferWithdrawn(ctx, m.OfferID); err != nil || w != want.set {
					t.Fatalf("step %d: withdrawn = %v, %v", i, w, err)
				}
			}
			if _, err := s.OfferWithdrawn(ctx, "https://b/none"); !errors.Is(err, ErrNotFound) {
				t.Errorf("missing offer: %v", err)
			}
			if _, err := s.SetOfferWithdrawn(ctx, "https://b/none", true); !errors.Is(err, ErrNotFound) {
				t.Errorf("missing offer: %v", err)
			}
		},
	})
}
