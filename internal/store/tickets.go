package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// ForgeWriteState is where a forge write stands.
type ForgeWriteState int

// The states of a forge write, stored as small integers like deliveries'.
const (
	// ForgeWritePending rows will be attempted (due, leased or waiting for a retry).
	ForgeWritePending ForgeWriteState = 0
	// ForgeWriteDone rows were written into the forge; kept to answer replays.
	ForgeWriteDone ForgeWriteState = 1
	// ForgeWriteDead rows were given up on (the forge refused them for good).
	ForgeWriteDead ForgeWriteState = 2
)

// ForgeRef is what a forge assigned to an object Fedforge wrote, recorded under the
// write's key so that a replay returns it instead of writing again.
type ForgeRef struct {
	// Number is the issue (or merge request) number.
	Number int64
	// ID is the forge's id of a comment, 0 for an issue.
	ID int64
	// URL is the object's page on the forge.
	URL string
}

// ForgeWrite is one write into a forge, queued by the inbox and run by the forge-write
// executor (internal/forgewrite) with retries, leases and idempotency by Key.
type ForgeWrite struct {
	// ID identifies the row for the lease calls.
	ID int64
	// Key is the idempotency key: the id of the activity that asked for the write.
	Key string
	// ActorID is the local actor whose spec.forge is written to.
	ActorID string
	// Kind says what is written (internal/forgewrite's kinds: issue, comment, ...).
	Kind string
	// Payload is the write itself, as internal/forgewrite encodes it.
	Payload json.RawMessage
	// State is pending, done or dead.
	State ForgeWriteState
	// Attempt counts leases, starting at 1 on the first.
	Attempt int
	// LeaseOwner is the worker holding the row.
	LeaseOwner string
	// LastError is the error of the previous attempt.
	LastError string
	// HasRef says the forge answered and Ref holds its answer.
	HasRef bool
	// Ref is what the forge assigned.
	Ref ForgeRef
	// Created is when the write was queued (UTC).
	Created time.Time
	// Finished is when it was done or given up (UTC), zero while pending.
	Finished time.Time
}

// ForgeWriteStats summarise the forge-write queue for FederationServer status.
type ForgeWriteStats struct {
	// Pending rows are waiting to be written.
	Pending int64
	// Retrying rows are pending after at least one failed attempt.
	Retrying int64
	// Done rows were written.
	Done int64
	// Dead rows were given up on.
	Dead int64
	// OldestPending is when the oldest pending row was queued (zero when none).
	OldestPending time.Time
}

// TicketRecord is what Fedforge knows of a Ticket beyond the forge's issue: who offered
// it from the Fediverse (the forge names Fedforge's token user as its author).
type TicketRecord struct {
	// ID is the Ticket's id (urls.Actor.Ticket of the issue number).
	ID string
	// ActorID is the local Repository actor the ticket belongs to.
	ActorID string
	// Number is the forge's issue number.
	Number int64
	// AuthorID is the remote actor that offered it.
	AuthorID string
	// OfferID is the Offer activity it came from.
	OfferID string
	// ObjectID is the id the offerer gave its Ticket object, if any.
	ObjectID string
	// Created is when it was recorded (UTC).
	Created time.Time
}

// TicketParticipant is a remote actor taking part in a ticket (its author, anyone who
// replied): the outbound side addresses comments, edits and Resolve to them.
type TicketParticipant struct {
	// ActorID is the remote actor.
	ActorID string
	// Inbox and SharedInbox are where activities about the ticket go.
	Inbox, SharedInbox string
	// Since is when it first took part (UTC).
	Since time.Time
}

// TicketComment maps a remote Note to the forge comment Fedforge wrote for it, so that
// an Update or Delete of the Note reaches the comment and the outbound side recognises
// the comment as one of ours (no echo).
type TicketComment struct {
	// NoteID is the remote Note's id.
	NoteID string
	// TicketID is the Ticket it is under.
	TicketID string
	// CommentID is the forge's comment id, 0 until the forge answered.
	CommentID int64
	// AuthorID is the remote actor that wrote the Note.
	AuthorID string
	// Deleted says the Note was deleted and its comment with it; the row stays so that
	// the forge's deletion webhook is still recognised as Fedforge's own.
	Deleted bool
	// Created is when it was recorded (UTC).
	Created time.Time
}

// Tickets is the store side of issue 13: the durable forge-write queue and the records
// of tickets, participants and comments. Store embeds it.
type Tickets interface {
	// EnqueueForgeWrite queues w (Key, ActorID, Kind, Payload), due at due, unless a
	// row with its Key exists; it returns the row under that key and whether it was
	// created now. A replayed activity therefore never queues a second write, and a
	// done row's Ref answers it.
	EnqueueForgeWrite(ctx context.Context, w ForgeWrite, due time.Time) (ForgeWrite, bool, error)
	// GetForgeWrite returns the row under key, or ErrNotFound.
	GetForgeWrite(ctx context.Context, key string) (ForgeWrite, error)
	// LeaseForgeWrites hands out up to Limit due pending rows to one worker; two
	// workers never hold one row, and an expired lease makes the row due again.
	LeaseForgeWrites(ctx context.Context, req LeaseRequest) ([]ForgeWrite, error)
	// RecordForgeRef stores the forge's answer on a leased row before its follow-up
	// work, so that a retry after a crash does not write into the forge again.
	// ErrLeaseLost when owner no longer holds it.
	RecordForgeRef(ctx context.Context, id int64, owner string, ref ForgeRef) error
	// FinishForgeWrite marks a leased row done. ErrLeaseLost when owner no longer holds it.
	FinishForgeWrite(ctx context.Context, id int64, owner string, at time.Time) error
	// RetryForgeWrite releases a leased row until next with the error.
	RetryForgeWrite(ctx context.Context, id int64, owner string, next time.Time, lastErr string) error
	// GiveUpForgeWrite dead-letters a leased row with the reason.
	GiveUpForgeWrite(ctx context.Context, id int64, owner string, at time.Time, reason string) error
	// ForgeWriteStats counts rows by state.
	ForgeWriteStats(ctx context.Context) (ForgeWriteStats, error)

	// PutTicket records a ticket offered from the Fediverse; a second record of the
	// same id keeps the first.
	PutTicket(ctx context.Context, t TicketRecord) error
	// GetTicket returns the record of a ticket id, or ErrNotFound (a forge-born ticket
	// has none).
	GetTicket(ctx context.Context, id string) (TicketRecord, error)
	// AddTicketParticipant records a remote actor as taking part in a ticket; its
	// inboxes are refreshed when it is recorded again.
	AddTicketParticipant(ctx context.Context, ticketID string, p TicketParticipant) error
	// TicketParticipants returns the participants of a ticket, oldest first.
	TicketParticipants(ctx context.Context, ticketID string) ([]TicketParticipant, error)
	// PutTicketComment records (or updates the comment id of) a remote Note written
	// as a forge comment.
	PutTicketComment(ctx context.Context, c TicketComment) error
	// TicketCommentByNote returns the comment of a remote Note, or ErrNotFound.
	TicketCommentByNote(ctx context.Context, noteID string) (TicketComment, error)
	// TicketCommentByForgeID returns the remote Note a forge comment of a ticket was
	// written for, or ErrNotFound (the comment was written in the forge).
	TicketCommentByForgeID(ctx context.Context, ticketID string, commentID int64) (TicketComment, error)
	// TicketComments returns the remote Notes of a ticket that are not deleted, oldest
	// first.
	TicketComments(ctx context.Context, ticketID string) ([]TicketComment, error)
	// MarkTicketCommentDeleted records that a remote Note's comment was deleted.
	MarkTicketCommentDeleted(ctx context.Context, noteID string) error
}

const forgeWriteCols = `id, key, actor_id, kind, payload, state, attempt, lease_owner, last_error,
	has_ref, ref_number, ref_id, ref_url, created, COALESCE(finished, 0)`

type scanner interface{ Scan(dest ...any) error }

func scanForgeWrite(r scanner) (ForgeWrite, error) {
	var w ForgeWrite
	var payload []byte
	var state, hasRef int64
	var created, finished int64
	if err := r.Scan(&w.ID, &w.Key, &w.ActorID, &w.Kind, &payload, &state, &w.Attempt, &w.LeaseOwner, &w.LastError,
		&hasRef, &w.Ref.Number, &w.Ref.ID, &w.Ref.URL, &created, &finished); err != nil {
		return w, err
	}
	w.Payload, w.State, w.HasRef = json.RawMessage(payload), ForgeWriteState(state), hasRef != 0
	w.Created, w.Finished = fromMicros(created), fromMicros(finished)
	return w, nil
}

// EnqueueForgeWrite implements Tickets.
func (s *sqlStore) EnqueueForgeWrite(ctx context.Context, w ForgeWrite, due time.Time) (ForgeWrite, bool, error) {
	if w.Key == "" || w.ActorID == "" || w.Kind == "" || len(w.Payload) == 0 {
		return ForgeWrite{}, false, errors.New("store: a forge write needs key, actor, kind and payload")
	}
	if due.IsZero() {
		due = utcNow()
	}
	var out ForgeWrite
	created := false
	err := s.inTx(ctx, func(t tx) error {
		res, err := t.exec(ctx, `INSERT INTO forge_writes (key, actor_id, kind, payload, next_attempt, created)
			VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING`,
			w.Key, w.ActorID, w.Kind, []byte(w.Payload), micros(due), micros(utcNow()))
		if err != nil {
			return fmt.Errorf("store: queue forge write %s: %w", w.Key, err)
		}
		n, _ := res.RowsAffected()
		created = n == 1
		out, err = scanForgeWrite(t.queryRow(ctx, `SELECT `+forgeWriteCols+` FROM forge_writes WHERE key = ?`, w.Key))
		if err != nil {
			return notFound(err, "forge write "+w.Key)
		}
		return nil
	})
	return out, created, err
}

// GetForgeWrite implements Tickets.
func (s *sqlStore) GetForgeWrite(ctx context.Context, key string) (ForgeWrite, error) {
	w, err := scanForgeWrite(s.queryRow(ctx, `SELECT `+forgeWriteCols+` FROM forge_writes WHERE key = ?`, key))
	if err != nil {
		return ForgeWrite{}, notFound(err, "forge write "+key)
	}
	return w, nil
}

// LeaseForgeWrites implements Tickets, as LeaseDeliveries does.
func (s *sqlStore) LeaseForgeWrites(ctx context.Context, req LeaseRequest) ([]ForgeWrite, error) {
	if req.Owner == "" || req.Limit <= 0 || req.Lease <= 0 {
		return nil, fmt.Errorf("store: a forge-write lease needs an owner, a positive limit and duration")
	}
	now := req.Now
	if now.IsZero() {
		now = utcNow()
	}
	lock := ""
	if s.eng == enginePostgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	var out []ForgeWrite
	err := s.inTx(ctx, func(t tx) error {
		out = out[:0]
		rows, err := t.query(ctx, `UPDATE forge_writes SET attempt = attempt + 1, lease_owner = ?, next_attempt = ?
			WHERE id IN (SELECT id FROM forge_writes WHERE state = 0 AND next_attempt <= ?
				ORDER BY next_attempt, id LIMIT ?`+lock+`)
			RETURNING `+forgeWriteCols,
			req.Owner, micros(now.Add(req.Lease)), micros(now), req.Limit)
		if err != nil {
			return fmt.Errorf("store: lease forge writes for %s: %w", req.Owner, err)
		}
		defer rows.Close()
		for rows.Next() {
			w, err := scanForgeWrite(rows)
			if err != nil {
				return fmt.Errorf("store: lease forge writes for %s: %w", req.Owner, err)
			}
			out = append(out, w)
		}
		return rows.Err()
	})
	return out, err
}

// leasedUpdate changes a row that owner holds, or reports ErrLeaseLost.
func (s *sqlStore) leasedUpdate(ctx context.Context, id int64, owner, set string, args ...any) error {
	return s.inTx(ctx, func(t tx) error {
		args = append(args, id, owner)
		res, err := t.exec(ctx, `UPDATE forge_writes SET `+set+` WHERE id = ? AND state = 0 AND lease_owner = ?`, args...)
		if err != nil {
			return fmt.Errorf("store: forge write %d: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("forge write %d held by %q: %w", id, owner, ErrLeaseLost)
		}
		return nil
	})
}

// RecordForgeRef implements Tickets.
func (s *sqlStore) RecordForgeRef(ctx context.Context, id int64, owner string, ref ForgeRef) error {
	return s.leasedUpdate(ctx, id, owner, `has_ref = 1, ref_number = ?, ref_id = ?, ref_url = ?`, ref.Number, ref.ID, ref.URL)
}

// FinishForgeWrite implements Tickets.
func (s *sqlStore) FinishForgeWrite(ctx context.Context, id int64, owner string, at time.Time) error {
	if at.IsZero() {
		at = utcNow()
	}
	return s.leasedUpdate(ctx, id, owner, `state = 1, finished = ?, lease_owner = '', last_error = ''`, micros(at))
}

// RetryForgeWrite implements Tickets.
func (s *sqlStore) RetryForgeWrite(ctx context.Context, id int64, owner string, next time.Time, lastErr string) error {
	if lastErr == "" {
		lastErr = "unknown error"
	}
	return s.leasedUpdate(ctx, id, owner, `next_attempt = ?, last_error = ?, lease_owner = ''`, micros(next), lastErr)
}

// GiveUpForgeWrite implements Tickets.
func (s *sqlStore) GiveUpForgeWrite(ctx context.Context, id int64, owner string, at time.Time, reason string) error {
	if at.IsZero() {
		at = utcNow()
	}
	if reason == "" {
		reason = "given up"
	}
	return s.leasedUpdate(ctx, id, owner, `state = 2, finished = ?, last_error = ?, lease_owner = ''`, micros(at), reason)
}

// ForgeWriteStats implements Tickets.
func (s *sqlStore) ForgeWriteStats(ctx context.Context) (ForgeWriteStats, error) {
	var st ForgeWriteStats
	var oldest int64
	err := s.queryRow(ctx, `SELECT
			COALESCE(SUM(CASE WHEN state = 0 THEN 1 ELSE 0 END), 0),
			COALESCE(SUM(CASE WHEN state = 0 AND last_error <> '' THEN 1 ELSE 0 END), 0),
			COALESCE(SUM(CASE WHEN state = 1 THEN 1 ELSE 0 END), 0),
			COALESCE(SUM(CASE WHEN state = 2 THEN 1 ELSE 0 END), 0),
			COALESCE(MIN(CASE WHEN state = 0 THEN created END), 0)
		FROM forge_writes`).Scan(&st.Pending, &st.Retrying, &st.Done, &st.Dead, &oldest)
	if err != nil {
		return st, fmt.Errorf("store: forge write stats: %w", err)
	}
	st.OldestPending = fromMicros(oldest)
	return st, nil
}

// PutTicket implements Tickets.
func (s *sqlStore) PutTicket(ctx context.Context, tr TicketRecord) error {
	if tr.ID == "" || tr.ActorID == "" || tr.Number <= 0 {
		return errors.New("store: a ticket needs id, actor and number")
	}
	if tr.Created.IsZero() {
		tr.Created = utcNow()
	}
	return s.inTx(ctx, func(t tx) error {
		_, err := t.exec(ctx, `INSERT INTO tickets (id, actor_id, number, author_id, offer_id, object_id, created)
			VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
			tr.ID, tr.ActorID, tr.Number, tr.AuthorID, tr.OfferID, tr.ObjectID, micros(tr.Created))
		if err != nil {
			return fmt.Errorf("store: put ticket %s: %w", tr.ID, err)
		}
		return nil
	})
}

// GetTicket implements Tickets.
func (s *sqlStore) GetTicket(ctx context.Context, id string) (TicketRecord, error) {
	tr := TicketRecord{ID: id}
	var created int64
	err := s.queryRow(ctx, `SELECT actor_id, number, author_id, offer_id, object_id, created FROM tickets WHERE id = ?`, id).
		Scan(&tr.ActorID, &tr.Number, &tr.AuthorID, &tr.OfferID, &tr.ObjectID, &created)
	if err != nil {
		return TicketRecord{}, notFound(err, "ticket "+id)
	}
	tr.Created = fromMicros(created)
	return tr, nil
}

// AddTicketParticipant implements Tickets.
func (s *sqlStore) AddTicketParticipant(ctx context.Context, ticketID string, p TicketParticipant) error {
	if ticketID == "" || p.ActorID == "" || p.Inbox == "" {
		return errors.New("store: a ticket participant needs a ticket, an actor and an inbox")
	}
	if p.Since.IsZero() {
		p.Since = utcNow()
	}
	return s.inTx(ctx, func(t tx) error {
		_, err := t.exec(ctx, `INSERT INTO ticket_participants (ticket_id, actor_id, inbox, shared_inbox, since)
			VALUES (?, ?, ?, ?, ?) ON CONFLICT (ticket_id, actor_id) DO UPDATE SET inbox = excluded.inbox,
				shared_inbox = excluded.shared_inbox`, ticketID, p.ActorID, p.Inbox, p.SharedInbox, micros(p.Since))
		if err != nil {
			return fmt.Errorf("store: ticket %s participant %s: %w", ticketID, p.ActorID, err)
		}
		return nil
	})
}

// TicketParticipants implements Tickets.
func (s *sqlStore) TicketParticipants(ctx context.Context, ticketID string) ([]TicketParticipant, error) {
	rows, err := s.query(ctx, `SELECT actor_id, inbox, shared_inbox, since FROM ticket_participants
		WHERE ticket_id = ? ORDER BY since, actor_id`, ticketID)
	if err != nil {
		return nil, fmt.Errorf("store: participants of %s: %w", ticketID, err)
	}
	defer rows.Close()
	var out []TicketParticipant
	for rows.Next() {
		var p TicketParticipant
		var since int64
		if err := rows.Scan(&p.ActorID, &p.Inbox, &p.SharedInbox, &since); err != nil {
			return nil, fmt.Errorf("store: participants of %s: %w", ticketID, err)
		}
		p.Since = fromMicros(since)
		out = append(out, p)
	}
	return out, rows.Err()
}

// PutTicketComment implements Tickets.
func (s *sqlStore) PutTicketComment(ctx context.Context, c TicketComment) error {
	if c.NoteID == "" || c.TicketID == "" || c.AuthorID == "" {
		return errors.New("store: a ticket comment needs a note, a ticket and an author")
	}
	if c.Created.IsZero() {
		c.Created = utcNow()
	}
	return s.inTx(ctx, func(t tx) error {
		// The comment id is set once (0 → the forge's); the Note's author never changes.
		_, err := t.exec(ctx, `INSERT INTO ticket_comments (note_id, ticket_id, comment_id, author_id, created)
			VALUES (?, ?, ?, ?, ?) ON CONFLICT (note_id) DO UPDATE SET
				comment_id = CASE WHEN ticket_comments.comment_id = 0 THEN excluded.comment_id ELSE ticket_comments.comment_id END`,
			c.NoteID, c.TicketID, c.CommentID, c.AuthorID, micros(c.Created))
		if err != nil {
			return fmt.Errorf("store: ticket comment %s: %w", c.NoteID, err)
		}
		return nil
	})
}

func scanTicketComment(r scanner) (TicketComment, error) {
	var c TicketComment
	var created, deleted int64
	err := r.Scan(&c.NoteID, &c.TicketID, &c.CommentID, &c.AuthorID, &deleted, &created)
	c.Created, c.Deleted = fromMicros(created), deleted != 0
	return c, err
}

// TicketCommentByNote implements Tickets.
func (s *sqlStore) TicketCommentByNote(ctx context.Context, noteID string) (TicketComment, error) {
	c, err := scanTicketComment(s.queryRow(ctx, `SELECT note_id, ticket_id, comment_id, author_id, deleted, created
		FROM ticket_comments WHERE note_id = ?`, noteID))
	if err != nil {
		return TicketComment{}, notFound(err, "ticket comment of "+noteID)
	}
	return c, nil
}

// TicketCommentByForgeID implements Tickets.
func (s *sqlStore) TicketCommentByForgeID(ctx context.Context, ticketID string, commentID int64) (TicketComment, error) {
	if commentID == 0 {
		return TicketComment{}, fmt.Errorf("comment 0 of %s: %w", ticketID, ErrNotFound)
	}
	c, err := scanTicketComment(s.queryRow(ctx, `SELECT note_id, ticket_id, comment_id, author_id, deleted, created
		FROM ticket_comments WHERE ticket_id = ? AND comment_id = ?`, ticketID, commentID))
	if err != nil {
		return TicketComment{}, notFound(err, fmt.Sprintf("comment %d of %s", commentID, ticketID))
	}
	return c, nil
}

// TicketComments implements Tickets.
func (s *sqlStore) TicketComments(ctx context.Context, ticketID string) ([]TicketComment, error) {
	rows, err := s.query(ctx, `SELECT note_id, ticket_id, comment_id, author_id, deleted, created FROM ticket_comments
		WHERE ticket_id = ? AND deleted = 0 ORDER BY created, note_id`, ticketID)
	if err != nil {
		return nil, fmt.Errorf("store: comments of %s: %w", ticketID, err)
	}
	defer rows.Close()
	var out []TicketComment
	for rows.Next() {
		c, err := scanTicketComment(rows)
		if err != nil {
			return nil, fmt.Errorf("store: comments of %s: %w", ticketID, err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// MarkTicketCommentDeleted implements Tickets.
func (s *sqlStore) MarkTicketCommentDeleted(ctx context.Context, noteID string) error {
	return s.inTx(ctx, func(t tx) error {
		if _, err := t.exec(ctx, `UPDATE ticket_comments SET deleted = 1 WHERE note_id = ?`, noteID); err != nil {
			return fmt.Errorf("store: delete ticket comment %s: %w", noteID, err)
		}
		return nil
	})
}
