package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// MentionTicket is an issue opened by a Note that mentioned a Repository actor (a
// Mastodon user filing a bug), with the reply Note that answered its author: a reply
// to either Note is a comment on the issue, as a reply to the Ticket is.
type MentionTicket struct {
	// NoteID is the remote Note that mentioned the actor.
	NoteID string
	// TicketID is the Ticket of the issue it opened.
	TicketID string
	// ReplyID is the local Note that answered it with the link.
	ReplyID string
	// AuthorID is the remote actor that wrote the Note.
	AuthorID string
	// Created is when it was recorded (UTC).
	Created time.Time
}

// MentionTickets is the store side of tickets from mentions (issue 13). Store embeds it.
type MentionTickets interface {
	// PutMentionTicket records the thread of an issue opened by a mention; a second
	// record of the same Note keeps the first.
	PutMentionTicket(ctx context.Context, m MentionTicket) error
	// MentionTicketByNote returns the thread a Note id belongs to, as the mentioning
	// Note or as our reply to it, or ErrNotFound.
	MentionTicketByNote(ctx context.Context, noteID string) (MentionTicket, error)
}

// PutMentionTicket implements MentionTickets.
func (s *sqlStore) PutMentionTicket(ctx context.Context, m MentionTicket) error {
	if m.NoteID == "" || m.TicketID == "" || m.ReplyID == "" || m.AuthorID == "" {
		return errors.New("store: a mention ticket needs a note, a ticket, a reply and an author")
	}
	if m.Created.IsZero() {
		m.Created = utcNow()
	}
	return s.inTx(ctx, func(t tx) error {
		_, err := t.exec(ctx, `INSERT INTO mention_tickets (note_id, ticket_id, reply_id, author_id, created)
			VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`, m.NoteID, m.TicketID, m.ReplyID, m.AuthorID, micros(m.Created))
		if err != nil {
			return fmt.Errorf("store: mention ticket %s: %w", m.NoteID, err)
		}
		return nil
	})
}

// MentionTicketByNote implements MentionTickets.
func (s *sqlStore) MentionTicketByNote(ctx context.Context, noteID string) (MentionTicket, error) {
	var m MentionTicket
	var created int64
	err := s.queryRow(ctx, `SELECT note_id, ticket_id, reply_id, author_id, created FROM mention_tickets
		WHERE note_id = ? OR reply_id = ?`, noteID, noteID).Scan(&m.NoteID, &m.TicketID, &m.ReplyID, &m.AuthorID, &created)
	if err != nil {
		return MentionTicket{}, notFound(err, "mention ticket of "+noteID)
	}
	m.Created = fromMicros(created)
	return m, nil
}
