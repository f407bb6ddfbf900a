package store

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"
)

// TestTicketsConformance: the forge-write queue and the ticket records behave the same on
// SQLite and PostgreSQL.
func TestTicketsConformance(t *testing.T) {
	ctx := context.Background()
	write := func(key string) ForgeWrite {
		return ForgeWrite{Key: key, ActorID: "https://h/actors/repo", Kind: "issue", Payload: json.RawMessage(`{"kind":"issue"}`)}
	}
	runSuite(t, map[string]storeTest{
		"a key is queued once and a replay returns the first row": func(t *testing.T, s Store, _ string) {
			w1, created, err := s.EnqueueForgeWrite(ctx, write("https://p/offer/1"), t0)
			if err != nil || !created || w1.ID == 0 || w1.State != ForgeWritePending || w1.HasRef {
				t.Fatalf("first enqueue = %+v, %v, %v", w1, created, err)
			}
			w2, created, err := s.EnqueueForgeWrite(ctx, write("https://p/offer/1"), t0)
			if err != nil || created || w2.ID != w1.ID {
				t.Fatalf("replayed enqueue = %+v, %v, %v; want the first row, not created", w2, created, err)
			}
			if _, err := s.GetForgeWrite(ctx, "https://p/missing"); !errors.Is(err, ErrNotFound) {
				t.Errorf("GetForgeWrite(missing) = %v, want ErrNotFound", err)
			}
			if _, _, err := s.EnqueueForgeWrite(ctx, ForgeWrite{Key: "k"}, t0); err == nil {
				t.Error("a write without actor, kind and payload was queued")
			}
		},
		"lease, ref, finish; a done key keeps its ref": func(t *testing.T, s Store, _ string) {
			if _, _, err := s.EnqueueForgeWrite(ctx, write("https://p/offer/2"), t0); err != nil {
				t.Fatal(err)
			}
			got, err := s.LeaseForgeWrites(ctx, LeaseRequest{Now: t0, Limit: 10, Lease: time.Minute, Owner: "a"})
			if err != nil || len(got) != 1 || got[0].Attempt != 1 || got[0].LeaseOwner != "a" {
				t.Fatalf("lease = %+v, %v", got, err)
			}
			// Leased: nobody else gets it until the lease ends.
			if again, _ := s.LeaseForgeWrites(ctx, LeaseRequest{Now: t0.Add(30 * time.Second), Limit: 10, Lease: time.Minute, Owner: "b"}); len(again) != 0 {
				t.Fatalf("a leased row was leased again: %+v", again)
			}
			if err := s.RecordForgeRef(ctx, got[0].ID, "b", ForgeRef{Number: 9}); !errors.Is(err, ErrLeaseLost) {
				t.Errorf("RecordForgeRef by another owner = %v, want ErrLeaseLost", err)
			}
			ref := ForgeRef{Number: 7, URL: "https://forge/o/r/issues/7"}
			if err := s.RecordForgeRef(ctx, got[0].ID, "a", ref); err != nil {
				t.Fatal(err)
			}
			if err := s.FinishForgeWrite(ctx, got[0].ID, "a", t0.Add(time.Second)); err != nil {
				t.Fatal(err)
			}
			w, created, err := s.EnqueueForgeWrite(ctx, write("https://p/offer/2"), t0)
			if err != nil || created || w.State != ForgeWriteDone || !w.HasRef || w.Ref != ref {
				t.Fatalf("replay of a done key = %+v, %v, %v; want the done row with its ref", w, created, err)
			}
			if more, _ := s.LeaseForgeWrites(ctx, LeaseRequest{Now: t0.Add(time.Hour), Limit: 10, Lease: time.Minute, Owner: "a"}); len(more) != 0 {
				t.Errorf("a done row was leased: %+v", more)
			}
		},
		"an expired lease is due again; retry and give up": func(t *testing.T, s Store, _ string) {
			if _, _, err := s.EnqueueForgeWrite(ctx, write("https://p/offer/3"), t0); err != nil {
				t.Fatal(err)
			}
			first, _ := s.LeaseForgeWrites(ctx, LeaseRequest{Now: t0, Limit: 1, Lease: time.Minute, Owner: "dead-worker"})
			second, err := s.LeaseForgeWrites(ctx, LeaseRequest{Now: t0.Add(2 * time.Minute), Limit: 1, Lease: time.Minute, Owner: "b"})
			if err != nil || len(first) != 1 || len(second) != 1 || second[0].Attempt != 2 {
				t.Fatalf("leases = %+v then %+v, %v", first, second, err)
			}
			if err := s.FinishForgeWrite(ctx, first[0].ID, "dead-worker", t0); !errors.Is(err, ErrLeaseLost) {
				t.Errorf("finish by the expired owner = %v, want ErrLeaseLost", err)
			}
			if err := s.RetryForgeWrite(ctx, second[0].ID, "b", t0.Add(10*time.Minute), "forge down"); err != nil {
				t.Fatal(err)
			}
			st, err := s.ForgeWriteStats(ctx)
			if err != nil || st.Pending != 1 || st.Retrying != 1 || st.OldestPending.IsZero() {
				t.Errorf("stats = %+v, %v", st, err)
			}
			if early, _ := s.LeaseForgeWrites(ctx, LeaseRequest{Now: t0.Add(5 * time.Minute), Limit: 1, Lease: time.Minute, Owner: "c"}); len(early) != 0 {
				t.Errorf("leased before its retry time: %+v", early)
			}
			third, _ := s.LeaseForgeWrites(ctx, LeaseRequest{Now: t0.Add(10 * time.Minute), Limit: 1, Lease: time.Minute, Owner: "c"})
			if len(third) != 1 || third[0].LastError != "forge down" {
				t.Fatalf("third lease = %+v", third)
			}
			if err := s.GiveUpForgeWrite(ctx, third[0].ID, "c", t0, "422 refused"); err != nil {
				t.Fatal(err)
			}
			st, _ = s.ForgeWriteStats(ctx)
			if st.Pending != 0 || st.Dead != 1 {
				t.Errorf("stats after give up = %+v", st)
			}
		},
		"concurrent workers never share a row": func(t *testing.T, s Store, _ string) {
			for i := range 20 {
				if _, _, err := s.EnqueueForgeWrite(ctx, write("https://p/offer/c"+string(rune('a'+i))), t0); err != nil {
					t.Fatal(err)
				}
			}
			var mu sync.Mutex
			seen := map[int64]string{}
			var wg sync.WaitGroup
			for w := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					owner := string(rune('A' + w))
					for {
						got, err := s.LeaseForgeWrites(ctx, LeaseRequest{Now: t0, Limit: 3, Lease: time.Hour, Owner: owner})
						if err != nil {
							t.Error(err)
							return
						}
						if len(got) == 0 {
							return
						}
						mu.Lock()
						for _, g := range got {
							if prev, dup := seen[g.ID]; dup {
								t.Errorf("row %d leased by %s and %s", g.ID, prev, owner)
							}
							seen[g.ID] = owner
						}
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			if len(seen) != 20 {
				t.Errorf("%d rows leased, want 20", len(seen))
			}
		},
		"tickets, participants and comments": func(t *testing.T, s Store, _ string) {
			tr := TicketRecord{ID: "https://h/actors/repo/issues/3", ActorID: "https://h/actors/repo", Number: 3,
				AuthorID: "https://p/users/alice", OfferID: "https://p/offer/1", Created: t0}
			if err := s.PutTicket(ctx, tr); err != nil {
				t.Fatal(err)
			}
			again := tr
			again.AuthorID = "https://p/users/mallory"
			if err := s.PutTicket(ctx, again); err != nil {
				t.Fatal(err)
			}
			if got, err := s.GetTicket(ctx, tr.ID); err != nil || got != tr {
				t.Errorf("GetTicket = %+v, %v; want the first record %+v", got, err, tr)
			}
			if _, err := s.GetTicket(ctx, "https://h/actors/repo/issues/4"); !errors.Is(err, ErrNotFound) {
				t.Errorf("GetTicket(forge-born) = %v, want ErrNotFound", err)
			}
			for i, p := range []TicketParticipant{
				{ActorID: "https://p/users/alice", Inbox: "https://p/users/alice/inbox", Since: t0},
				{ActorID: "https://q/users/bob", Inbox: "https://q/users/bob/inbox", SharedInbox: "https://q/inbox", Since: t0.Add(time.Minute)},
				{ActorID: "https://p/users/alice", Inbox: "https://p/users/alice/inbox2", Since: t0.Add(time.Hour)},
			} {
				if err := s.AddTicketParticipant(ctx, tr.ID, p); err != nil {
					t.Fatalf("participant %d: %v", i, err)
				}
			}
			ps, err := s.TicketParticipants(ctx, tr.ID)
			if err != nil || len(ps) != 2 || ps[0].ActorID != "https://p/users/alice" || ps[0].Inbox != "https://p/users/alice/inbox2" ||
				!ps[0].Since.Equal(t0) || ps[1].SharedInbox != "https://q/inbox" {
				t.Errorf("participants = %+v, %v", ps, err)
			}
			note := TicketComment{NoteID: "https://q/notes/1", TicketID: tr.ID, AuthorID: "https://q/users/bob", Created: t0}
			if err := s.PutTicketComment(ctx, note); err != nil {
				t.Fatal(err)
			}
			if _, err := s.TicketCommentByForgeID(ctx, tr.ID, 0); !errors.Is(err, ErrNotFound) {
				t.Errorf("comment 0 = %v, want ErrNotFound", err)
			}
			note.CommentID = 42
			if err := s.PutTicketComment(ctx, note); err != nil {
				t.Fatal(err)
			}
			other := note
			other.CommentID, other.AuthorID = 43, "https://p/users/mallory"
			if err := s.PutTicketComment(ctx, other); err != nil {
				t.Fatal(err)
			}
			got, err := s.TicketCommentByForgeID(ctx, tr.ID, 42)
			if err != nil || got.NoteID != note.NoteID || got.AuthorID != "https://q/users/bob" {
				t.Errorf("comment 42 = %+v, %v; want bob's Note, its id set once", got, err)
			}
			if got, err := s.TicketCommentByNote(ctx, note.NoteID); err != nil || got.CommentID != 42 {
				t.Errorf("comment of note = %+v, %v", got, err)
			}
			if all, err := s.TicketComments(ctx, tr.ID); err != nil || len(all) != 1 {
				t.Errorf("comments = %+v, %v", all, err)
			}
			if err := s.MarkTicketCommentDeleted(ctx, note.NoteID); err != nil {
				t.Fatal(err)
			}
			if got, err := s.TicketCommentByForgeID(ctx, tr.ID, 42); err != nil || !got.Deleted || got.NoteID != note.NoteID {
				t.Errorf("deleted comment by forge id = %+v, %v; want it kept, marked deleted", got, err)
			}
			if all, err := s.TicketComments(ctx, tr.ID); err != nil || len(all) != 0 {
				t.Errorf("comments after deletion = %+v, %v; want none listed", all, err)
			}
		},
	})
}
