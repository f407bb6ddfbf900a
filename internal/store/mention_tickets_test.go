package store

import (
	"context"
	"errors"
	"testing"
)

// TestMentionTicketsConformance: the threads of issues opened by mentions behave the same
// on SQLite and PostgreSQL.
func TestMentionTicketsConformance(t *testing.T) {
	ctx := context.Background()
	first := MentionTicket{NoteID: "https://m.example/users/a/statuses/1", TicketID: "https://h/actors/repo/issues/1",
		ReplyID: "https://h/actors/repo/objects/r1", AuthorID: "https://m.example/users/a", Created: t0}
	runSuite(t, map[string]storeTest{
		"a thread is found by either Note, and the first record is kept": func(t *testing.T, s Store, _ string) {
			if _, err := s.MentionTicketByNote(ctx, first.NoteID); !errors.Is(err, ErrNotFound) {
				t.Fatalf("before any record: %v, want ErrNotFound", err)
			}
			if err := s.PutMentionTicket(ctx, first); err != nil {
				t.Fatal(err)
			}
			again := first
			again.TicketID, again.ReplyID = "https://h/actors/repo/issues/2", "https://h/actors/repo/objects/r2"
			if err := s.PutMentionTicket(ctx, again); err != nil {
				t.Fatalf("a second record of the same Note: %v", err)
			}
			for _, id := range []string{first.NoteID, first.ReplyID} {
				got, err := s.MentionTicketByNote(ctx, id)
				if err != nil || got.NoteID != first.NoteID || got.TicketID != first.TicketID || got.ReplyID != first.ReplyID ||
					got.AuthorID != first.AuthorID || !got.Created.Equal(t0.Truncate(1000)) {
					t.Fatalf("by %s: %+v %v; want the first record", id, got, err)
				}
			}
			if _, err := s.MentionTicketByNote(ctx, again.ReplyID); !errors.Is(err, ErrNotFound) {
				t.Errorf("the second record's reply was stored: %v", err)
			}
		},
		"a record needs every field": func(t *testing.T, s Store, _ string) {
			for _, m := range []MentionTicket{{TicketID: "t", ReplyID: "r", AuthorID: "a"}, {NoteID: "n", ReplyID: "r", AuthorID: "a"},
				{NoteID: "n", TicketID: "t", AuthorID: "a"}, {NoteID: "n", TicketID: "t", ReplyID: "r"}} {
				if err := s.PutMentionTicket(ctx, m); err == nil {
					t.Errorf("%+v was stored", m)
				}
			}
		},
	})
}
