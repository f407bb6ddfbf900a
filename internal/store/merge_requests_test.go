package store

import (
	"context"
	"errors"
	"testing"
)

// TestMergeRequestsConformance: the records of federated merge requests behave the same
// on SQLite and PostgreSQL.
func TestMergeRequestsConformance(t *testing.T) {
	ctx := context.Background()
	rec := func(id string, number int64, ref string) MergeRequestRecord {
		return MergeRequestRecord{ID: id, ActorID: "https://a/actors/bob", Number: number, OfferID: "https://b/offers/1",
			OriginActor: "https://b/actors/alice", OriginRef: ref, CloneURL: "https://forge-b/alice/project.git",
			Branch: "federated/b/alice/fix", TargetBranch: "main"}
	}
	runSuite(t, map[string]storeTest{
		"put, get, a second put keeps the first but fills an empty head": func(t *testing.T, s Store, _ string) {
			m := rec("https://a/actors/bob/merge-requests/1", 1, "refs/heads/fix")
			if err := s.PutMergeRequest(ctx, m); err != nil {
				t.Fatal(err)
			}
			again := m
			again.Head, again.Branch = "0123456789012345678901234567890123456789", "other"
			if err := s.PutMergeRequest(ctx, again); err != nil {
				t.Fatal(err)
			}
			got, err := s.GetMergeRequest(ctx, m.ID)
			if err != nil || got.Branch != m.Branch || got.Head != again.Head || got.Number != 1 || got.CloneURL != m.CloneURL ||
				got.OriginRef != "refs/heads/fix" || got.Closed || got.Created.IsZero() {
				t.Fatalf("GetMergeRequest = %+v, %v; want the first record with the head filled", got, err)
			}
			if _, err := s.GetMergeRequest(ctx, "https://a/missing"); !errors.Is(err, ErrNotFound) {
				t.Errorf("GetMergeRequest(missing) = %v, want ErrNotFound", err)
			}
			if err := s.PutMergeRequest(ctx, MergeRequestRecord{ID: "x"}); err == nil {
				t.Error("a record without actor, number, origin and branch was stored")
			}
		},
		"open ones by origin; head and close": func(t *testing.T, s Store, _ string) {
			for _, m := range []MergeRequestRecord{rec("https://a/mr/1", 1, "refs/heads/fix"), rec("https://a/mr/2", 2, "refs/heads/fix"),
				rec("https://a/mr/3", 3, "refs/heads/other")} {
				if err := s.PutMergeRequest(ctx, m); err != nil {
					t.Fatal(err)
				}
			}
			open, err := s.OpenMergeRequestsFrom(ctx, "https://b/actors/alice", "refs/heads/fix")
			if err != nil || len(open) != 2 || open[0].Number != 1 || open[1].Number != 2 {
				t.Fatalf("open from fix = %+v, %v; want #1 and #2", open, err)
			}
			if err := s.SetMergeRequestHead(ctx, "https://a/mr/1", "abc"); err != nil {
				t.Fatal(err)
			}
			if err := s.CloseMergeRequest(ctx, "https://a/mr/2"); err != nil {
				t.Fatal(err)
			}
			open, err = s.OpenMergeRequestsFrom(ctx, "https://b/actors/alice", "refs/heads/fix")
			if err != nil || len(open) != 1 || open[0].Head != "abc" {
				t.Fatalf("open from fix after close = %+v, %v; want #1 at abc", open, err)
			}
			if none, err := s.OpenMergeRequestsFrom(ctx, "https://c/actors/eve", "refs/heads/fix"); err != nil || len(none) != 0 {
				t.Errorf("another actor's branch matched: %+v, %v", none, err)
			}
			if err := s.CloseMergeRequest(ctx, "https://a/mr/9"); !errors.Is(err, ErrNotFound) {
				t.Errorf("closing a missing merge request = %v, want ErrNotFound", err)
			}
		},
	})
}
