package store

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestMergeRequestsOfferedConformance: the fork side's records of offered pull requests
// and fork notices behave the same on SQLite and PostgreSQL.
func TestMergeRequestsOfferedConformance(t *testing.T) {
	ctx := context.Background()
	const fork, upA, upC = "https://b/actors/project", "https://a/actors/project", "https://c/actors/project"
	offer := func(n int64, up, head string) OfferedMergeRequest {
		return OfferedMergeRequest{ActorID: fork, Number: n, UpstreamID: up, OfferID: up + "/offer/" + head, Head: head, Base: "main", Created: t0}
	}
	runSuite(t, map[string]storeTest{
		"remote actors mentioning a clone URL": func(t *testing.T, s Store, _ string) {
			const clone = "http://a.example/bob/project.git"
			for _, a := range []RemoteActor{
				{ID: upA, Inbox: upA + "/inbox", Raw: json.RawMessage(`{"id":"` + upA + `","type":"Repository","cloneUri":"` + clone + `"}`)},
				{ID: upC, Inbox: upC + "/inbox", Raw: json.RawMessage(`{"id":"` + upC + `","type":"Person"}`)},
				{ID: "https://a.example/failed", Negative: true, Error: "gone"},
			} {
				a.FetchedAt, a.ExpiresAt = t0, t0.Add(time.Hour)
				if err := s.PutRemoteActor(ctx, a); err != nil {
					t.Fatal(err)
				}
			}
			got, err := s.RemoteActorsMentioning(ctx, clone, 10)
			if err != nil || len(got) != 1 || got[0].ID != upA || got[0].Inbox != upA+"/inbox" || !strings.Contains(string(got[0].Raw), clone) {
				t.Fatalf("RemoteActorsMentioning = %+v, %v; want R_A only", got, err)
			}
			if got, err := s.RemoteActorsMentioning(ctx, "http://nowhere.example/x.git", 10); err != nil || len(got) != 0 {
				t.Errorf("RemoteActorsMentioning(unknown) = %+v, %v", got, err)
			}
		},
		"an offer is recorded once per pull request and upstream": func(t *testing.T, s Store, _ string) {
			for i, m := range []OfferedMergeRequest{offer(3, upA, "fix"), offer(3, upA, "fix"), offer(3, upC, "fix")} {
				created, err := s.RecordMergeRequestOffer(ctx, m)
				if err != nil {
					t.Fatal(err)
				}
				if want := i != 1; created != want {
					t.Errorf("record #%d created = %v, want %v", i, created, want)
				}
			}
			got, err := s.OfferedMergeRequestsOf(ctx, fork, 3)
			if err != nil || len(got) != 2 || got[0].UpstreamID != upA || got[1].UpstreamID != upC || got[0].State != OfferedPending {
				t.Fatalf("OfferedMergeRequestsOf = %+v, %v; want the offers to A and C, pending", got, err)
			}
			if _, err := s.RecordMergeRequestOffer(ctx, OfferedMergeRequest{ActorID: fork, Number: 4}); err == nil {
				t.Error("an offer without upstream, offer id and head was recorded")
			}
		},
		"the Accept records the upstream ticket; lookups by offer, ticket and branch": func(t *testing.T, s Store, _ string) {
			m := offer(5, upA, "feature")
			if _, err := s.RecordMergeRequestOffer(ctx, m); err != nil {
				t.Fatal(err)
			}
			if _, err := s.OfferedMergeRequestByTicket(ctx, ""); !errors.Is(err, ErrNotFound) {
				t.Errorf("ByTicket(\"\") = %v, want ErrNotFound (a pending offer has no ticket yet)", err)
			}
			ticket := upA + "/merge-requests/1"
			if err := s.AnswerMergeRequestOffer(ctx, m.OfferID, OfferedAccepted, ticket); err != nil {
				t.Fatal(err)
			}
			got, err := s.OfferedMergeRequestByTicket(ctx, ticket)
			if err != nil || got.Number != 5 || got.OfferID != m.OfferID || got.State != OfferedAccepted || got.Head != "feature" || got.Base != "main" {
				t.Fatalf("ByTicket = %+v, %v", got, err)
			}
			if got, err := s.OfferedMergeRequestByOffer(ctx, m.OfferID); err != nil || got.TicketID != ticket {
				t.Fatalf("ByOffer = %+v, %v", got, err)
			}
			open, err := s.OpenOfferedMergeRequestsFrom(ctx, fork, "feature")
			if err != nil || len(open) != 1 {
				t.Fatalf("OpenFrom(feature) = %+v, %v", open, err)
			}
			// Merged: no longer open; the ticket is kept when a state comes without one.
			if err := s.AnswerMergeRequestOffer(ctx, m.OfferID, OfferedMerged, ""); err != nil {
				t.Fatal(err)
			}
			if open, _ := s.OpenOfferedMergeRequestsFrom(ctx, fork, "feature"); len(open) != 0 {
				t.Errorf("a merged offer is still open: %+v", open)
			}
			if got, _ := s.OfferedMergeRequestByTicket(ctx, ticket); got.State != OfferedMerged {
				t.Errorf("state after merge = %q, ticket kept? %+v", got.State, got)
			}
			if err := s.AnswerMergeRequestOffer(ctx, "https://nowhere/offer", OfferedRejected, ""); !errors.Is(err, ErrNotFound) {
				t.Errorf("answer to an unknown offer = %v, want ErrNotFound", err)
			}
			if err := s.AnswerMergeRequestOffer(ctx, m.OfferID, "lost", ""); err == nil {
				t.Error("an unknown state was stored")
			}
		},
		"a fork notice is kept per actor and replaced when the upstream changes": func(t *testing.T, s Store, _ string) {
			if _, err := s.ForkNoticeOf(ctx, fork); !errors.Is(err, ErrNotFound) {
				t.Fatalf("ForkNoticeOf before any = %v, want ErrNotFound", err)
			}
			for _, up := range []string{upA, upC} {
				if err := s.RecordForkNotice(ctx, ForkNotice{ActorID: fork, UpstreamID: up, ActivityID: up + "/create", Sent: t0}); err != nil {
					t.Fatal(err)
				}
			}
			n, err := s.ForkNoticeOf(ctx, fork)
			if err != nil || n.UpstreamID != upC || n.ActivityID != upC+"/create" || !n.Sent.Equal(t0) || n.Found {
				t.Fatalf("ForkNoticeOf = %+v, %v; want the notice to C, declared", n, err)
			}
			if err := s.RecordForkNotice(ctx, ForkNotice{ActorID: fork, UpstreamID: upA, ActivityID: upA + "/create", Found: true}); err != nil {
				t.Fatal(err)
			}
			if n, err := s.ForkNoticeOf(ctx, fork); err != nil || n.UpstreamID != upA || !n.Found {
				t.Fatalf("ForkNoticeOf after a found upstream = %+v, %v", n, err)
			}
			if err := s.RecordForkNotice(ctx, ForkNotice{ActorID: fork}); err == nil {
				t.Error("a fork notice without upstream was recorded")
			}
		},
	})
}
