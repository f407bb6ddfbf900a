package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// OfferedState is where a pull request offered upstream stands (issue 14, fork side).
type OfferedState string

// The states of an offered merge request.
const (
	// OfferedPending: the Offer went out, no answer yet.
	OfferedPending OfferedState = "offered"
	// OfferedAccepted: the upstream opened its merge request (TicketID).
	OfferedAccepted OfferedState = "accepted"
	// OfferedRejected: the upstream refused the Offer.
	OfferedRejected OfferedState = "rejected"
	// OfferedMerged: the upstream merged it (Resolve with a Commit).
	OfferedMerged OfferedState = "merged"
	// OfferedClosed: the upstream closed it without merge (Resolve without result).
	OfferedClosed OfferedState = "closed"
)

// Open says the offered merge request may still change upstream: pushes to its branch
// go to the upstream, and its discussion is carried.
func (s OfferedState) Open() bool { return s == OfferedPending || s == OfferedAccepted }

// OfferedMergeRequest is a pull request in the forge of a local Repository actor (the
// fork) that Fedforge offered to an upstream Repository actor on another instance.
type OfferedMergeRequest struct {
	// ActorID is the local Repository actor (R_B).
	ActorID string
	// Number is the pull request's number in the local forge.
	Number int64
	// UpstreamID is the upstream Repository actor it was offered to (R_A).
	UpstreamID string
	// OfferID is the Offer activity (deterministic per actor, number and upstream).
	OfferID string
	// Head and Base are the pull request's branches in the local forge.
	Head, Base string
	// TicketID is the upstream's merge-request Ticket (Accept.result), "" until then.
	TicketID string
	// State is where it stands.
	State OfferedState
	// Created and Updated are UTC.
	Created, Updated time.Time
}

// ForkNotice is the fork notice a local Repository actor sent to its upstream.
type ForkNotice struct {
	// ActorID is the local Repository actor (the fork).
	ActorID string
	// UpstreamID is the upstream actor told.
	UpstreamID string
	// ActivityID is the Create{Repository} sent.
	ActivityID string
	// Sent is when it was queued (UTC).
	Sent time.Time
	// Found says the upstream was found from the forge's record of where the repository
	// was cloned from, not declared in spec.mergeRequests.upstream.
	Found bool
}

// MergeRequestsOffered is the store side of the fork half of issue 14: the pull requests
// offered upstream and their answers, and the fork notices sent. Store embeds it.
type MergeRequestsOffered interface {
	// RecordMergeRequestOffer records an offer (state offered) unless a row for its
	// actor, number and upstream exists; created says it was new.
	RecordMergeRequestOffer(ctx context.Context, m OfferedMergeRequest) (created bool, err error)
	// OfferedMergeRequestByOffer returns the row of an Offer id, or ErrNotFound.
	OfferedMergeRequestByOffer(ctx context.Context, offerID string) (OfferedMergeRequest, error)
	// OfferedMergeRequestByTicket returns the row whose upstream Ticket is ticketID, or
	// ErrNotFound.
	OfferedMergeRequestByTicket(ctx context.Context, ticketID string) (OfferedMergeRequest, error)
	// OfferedMergeRequestsOf returns the rows of one pull request of a local actor (one
	// per upstream it was offered to), oldest first.
	OfferedMergeRequestsOf(ctx context.Context, actorID string, number int64) ([]OfferedMergeRequest, error)
	// OpenOfferedMergeRequestsFrom returns the open rows (offered or accepted) whose
	// head branch is head, oldest first.
	OpenOfferedMergeRequestsFrom(ctx context.Context, actorID, head string) ([]OfferedMergeRequest, error)
	// AnswerMergeRequestOffer sets the state (and, when ticketID is not "", the upstream
	// Ticket) of the row of an Offer id; ErrNotFound when there is none.
	AnswerMergeRequestOffer(ctx context.Context, offerID string, state OfferedState, ticketID string) error

	// ForkNoticeOf returns the fork notice a local actor sent, or ErrNotFound.
	ForkNoticeOf(ctx context.Context, actorID string) (ForkNotice, error)
	// RecordForkNotice records (or replaces, when the upstream changed) the fork notice
	// of a local actor.
	RecordForkNotice(ctx context.Context, n ForkNotice) error
	// RemoteActorsMentioning returns up to limit cached remote actors (not failed
	// lookups) whose document contains s, for a caller that then reads the documents (the
	// Repository actors whose cloneUri is a given URL). It scans the cache: callers ask
	// rarely (once per fronted repository without a declared upstream, with a memo).
	RemoteActorsMentioning(ctx context.Context, s string, limit int) ([]RemoteActor, error)
}

const offeredCols = `actor_id, number, upstream_id, offer_id, head, base, ticket_id, state, created, updated`

func scanOffered(r scanner) (OfferedMergeRequest, error) {
	var m OfferedMergeRequest
	var state string
	var created, updated int64
	if err := r.Scan(&m.ActorID, &m.Number, &m.UpstreamID, &m.OfferID, &m.Head, &m.Base, &m.TicketID, &state, &created, &updated); err != nil {
		return m, err
	}
	m.State, m.Created, m.Updated = OfferedState(state), fromMicros(created), fromMicros(updated)
	return m, nil
}

func validOfferedState(s OfferedState) bool {
	switch s {
	case OfferedPending, OfferedAccepted, OfferedRejected, OfferedMerged, OfferedClosed:
		return true
	}
	return false
}

// RecordMergeRequestOffer implements MergeRequestsOffered.
func (s *sqlStore) RecordMergeRequestOffer(ctx context.Context, m OfferedMergeRequest) (bool, error) {
	if m.ActorID == "" || m.Number <= 0 || m.UpstreamID == "" || m.OfferID == "" || m.Head == "" {
		return false, fmt.Errorf("store: an offered merge request needs actor, number, upstream, offer and head (got %q #%d → %q)", m.ActorID, m.Number, m.UpstreamID)
	}
	if m.Created.IsZero() {
		m.Created = utcNow()
	}
	var created bool
	err := s.inTx(ctx, func(t tx) error {
		res, err := t.exec(ctx, `INSERT INTO mr_offered (`+offeredCols+`) VALUES (?, ?, ?, ?, ?, ?, '', ?, ?, ?)
			ON CONFLICT (actor_id, number, upstream_id) DO NOTHING`,
			m.ActorID, m.Number, m.UpstreamID, m.OfferID, m.Head, m.Base, string(OfferedPending), micros(m.Created), micros(m.Created))
		if err != nil {
			return fmt.Errorf("store: record offer of #%d of %s to %s: %w", m.Number, m.ActorID, m.UpstreamID, err)
		}
		n, _ := res.RowsAffected()
		created = n == 1
		return nil
	})
	return created, err
}

// OfferedMergeRequestByOffer implements MergeRequestsOffered.
func (s *sqlStore) OfferedMergeRequestByOffer(ctx context.Context, offerID string) (OfferedMergeRequest, error) {
	m, err := scanOffered(s.queryRow(ctx, `SELECT `+offeredCols+` FROM mr_offered WHERE offer_id = ?`, offerID))
	if err != nil {
		return OfferedMergeRequest{}, notFound(err, "offered merge request "+offerID)
	}
	return m, nil
}

// OfferedMergeRequestByTicket implements MergeRequestsOffered.
func (s *sqlStore) OfferedMergeRequestByTicket(ctx context.Context, ticketID string) (OfferedMergeRequest, error) {
	if ticketID == "" {
		return OfferedMergeRequest{}, fmt.Errorf("offered merge request of no ticket: %w", ErrNotFound)
	}
	m, err := scanOffered(s.queryRow(ctx, `SELECT `+offeredCols+` FROM mr_offered WHERE ticket_id = ?`, ticketID))
	if err != nil {
		return OfferedMergeRequest{}, notFound(err, "offered merge request of ticket "+ticketID)
	}
	return m, nil
}

func (s *sqlStore) listOffered(ctx context.Context, query string, args ...any) ([]OfferedMergeRequest, error) {
	rows, err := s.query(ctx, `SELECT `+offeredCols+` FROM mr_offered WHERE `+query+` ORDER BY created, upstream_id`, args...)
	if err != nil {
		return nil, fmt.Errorf("store: list offered merge requests: %w", err)
	}
	defer rows.Close()
	var out []OfferedMergeRequest
	for rows.Next() {
		m, err := scanOffered(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list offered merge requests: %w", err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// OfferedMergeRequestsOf implements MergeRequestsOffered.
func (s *sqlStore) OfferedMergeRequestsOf(ctx context.Context, actorID string, number int64) ([]OfferedMergeRequest, error) {
	return s.listOffered(ctx, `actor_id = ? AND number = ?`, actorID, number)
}

// OpenOfferedMergeRequestsFrom implements MergeRequestsOffered.
func (s *sqlStore) OpenOfferedMergeRequestsFrom(ctx context.Context, actorID, head string) ([]OfferedMergeRequest, error) {
	return s.listOffered(ctx, `actor_id = ? AND head = ? AND state IN (?, ?)`, actorID, head, string(OfferedPending), string(OfferedAccepted))
}

// AnswerMergeRequestOffer implements MergeRequestsOffered.
func (s *sqlStore) AnswerMergeRequestOffer(ctx context.Context, offerID string, state OfferedState, ticketID string) error {
	if !validOfferedState(state) {
		return fmt.Errorf("store: unknown offered merge request state %q", state)
	}
	return s.inTx(ctx, func(t tx) error {
		res, err := t.exec(ctx, `UPDATE mr_offered SET state = ?, updated = ?,
			ticket_id = CASE WHEN ? = '' THEN ticket_id ELSE ? END WHERE offer_id = ?`,
			string(state), micros(utcNow()), ticketID, ticketID, offerID)
		if err != nil {
			return fmt.Errorf("store: answer offer %s: %w", offerID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("offer %s: %w", offerID, ErrNotFound)
		}
		return nil
	})
}

// ForkNoticeOf implements MergeRequestsOffered.
func (s *sqlStore) ForkNoticeOf(ctx context.Context, actorID string) (ForkNotice, error) {
	n := ForkNotice{ActorID: actorID}
	var sent, found int64
	err := s.queryRow(ctx, `SELECT upstream_id, activity_id, sent, found FROM mr_fork_notices WHERE actor_id = ?`, actorID).
		Scan(&n.UpstreamID, &n.ActivityID, &sent, &found)
	if err != nil {
		return ForkNotice{}, notFound(err, "fork notice of "+actorID)
	}
	n.Sent, n.Found = fromMicros(sent), found != 0
	return n, nil
}

// RecordForkNotice implements MergeRequestsOffered.
func (s *sqlStore) RecordForkNotice(ctx context.Context, n ForkNotice) error {
	if n.ActorID == "" || n.UpstreamID == "" || n.ActivityID == "" {
		return errors.New("store: a fork notice needs actor, upstream and activity")
	}
	if n.Sent.IsZero() {
		n.Sent = utcNow()
	}
	return s.inTx(ctx, func(t tx) error {
		found := 0
		if n.Found {
			found = 1
		}
		_, err := t.exec(ctx, `INSERT INTO mr_fork_notices (actor_id, upstream_id, activity_id, sent, found) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (actor_id) DO UPDATE SET upstream_id = excluded.upstream_id, activity_id = excluded.activity_id,
				sent = excluded.sent, found = excluded.found`,
			n.ActorID, n.UpstreamID, n.ActivityID, micros(n.Sent), found)
		if err != nil {
			return fmt.Errorf("store: fork notice of %s: %w", n.ActorID, err)
		}
		return nil
	})
}

// RemoteActorsMentioning implements MergeRequestsOffered.
func (s *sqlStore) RemoteActorsMentioning(ctx context.Context, needle string, limit int) ([]RemoteActor, error) {
	if needle == "" {
		return nil, nil
	}
	match := `instr(CAST(raw AS TEXT), ?) > 0`
	if s.eng == enginePostgres {
		match = `position(convert_to(?, 'UTF8') in raw) > 0`
	}
	rows, err := s.query(ctx, `SELECT id, inbox, shared_inbox, raw FROM remote_actors WHERE NOT negative AND raw IS NOT NULL AND `+match+
		` ORDER BY id LIMIT ?`, needle, clampLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("store: remote actors mentioning %q: %w", needle, err)
	}
	defer rows.Close()
	var out []RemoteActor
	for rows.Next() {
		var a RemoteActor
		var raw []byte
		if err := rows.Scan(&a.ID, &a.Inbox, &a.SharedInbox, &raw); err != nil {
			return nil, fmt.Errorf("store: remote actors mentioning %q: %w", needle, err)
		}
		a.Raw = raw
		out = append(out, a)
	}
	return out, rows.Err()
}
