package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// MergeRequestRecord is a pull request Fedforge opened in the forge from a merge request
// offered on the Fediverse (issue 14, upstream side): which remote branch it mirrors and
// where, so that a ForgeFed Push from the origin finds the federated branch to update.
type MergeRequestRecord struct {
	// ID is the merge request's Ticket (urls.Actor.MergeRequest of the pull request number).
	ID string
	// ActorID is the local Repository actor.
	ActorID string
	// Number is the forge's pull request number.
	Number int64
	// OfferID is the Offer it came from.
	OfferID string
	// OriginActor is the remote Repository actor that offered it (the Branch's context);
	// OriginRef the branch's ref there (refs/heads/<name>).
	OriginActor, OriginRef string
	// CloneURL is the origin repository's clone URL, read from its actor document.
	CloneURL string
	// Branch is the federated branch in the forge; TargetBranch the pull request's base.
	Branch, TargetBranch string
	// Head is the commit last mirrored into Branch.
	Head string
	// Closed says the pull request was found closed or merged: a Push no longer updates it.
	Closed bool
	// Created and Updated are when the row was written and last changed (UTC).
	Created, Updated time.Time
}

// MergeRequests keeps the records of federated merge requests. Store embeds it.
type MergeRequests interface {
	// PutMergeRequest records m; recording an id again keeps the first record, except
	// that an empty head is filled.
	PutMergeRequest(ctx context.Context, m MergeRequestRecord) error
	// GetMergeRequest returns the record of a merge request's Ticket id, or ErrNotFound.
	GetMergeRequest(ctx context.Context, id string) (MergeRequestRecord, error)
	// OpenMergeRequestsFrom returns the open merge requests whose origin is ref of the
	// remote actor originActor, oldest first.
	OpenMergeRequestsFrom(ctx context.Context, originActor, originRef string) ([]MergeRequestRecord, error)
	// SetMergeRequestHead records the commit a Push mirrored into the federated branch.
	SetMergeRequestHead(ctx context.Context, id, head string) error
	// CloseMergeRequest marks a merge request closed (merged or closed in the forge).
	CloseMergeRequest(ctx context.Context, id string) error
}

const mergeRequestCols = `id, actor_id, number, offer_id, origin_actor, origin_ref, clone_url, branch,
	target_branch, head, closed, created, updated`

func scanMergeRequest(r scanner) (MergeRequestRecord, error) {
	var m MergeRequestRecord
	var closed, created, updated int64
	err := r.Scan(&m.ID, &m.ActorID, &m.Number, &m.OfferID, &m.OriginActor, &m.OriginRef, &m.CloneURL, &m.Branch,
		&m.TargetBranch, &m.Head, &closed, &created, &updated)
	m.Closed, m.Created, m.Updated = closed != 0, fromMicros(created), fromMicros(updated)
	return m, err
}

// PutMergeRequest implements MergeRequests.
func (s *sqlStore) PutMergeRequest(ctx context.Context, m MergeRequestRecord) error {
	if m.ID == "" || m.ActorID == "" || m.Number <= 0 || m.OriginActor == "" || m.OriginRef == "" || m.Branch == "" {
		return errors.New("store: a merge request needs id, actor, number, origin and branch")
	}
	if m.Created.IsZero() {
		m.Created = utcNow()
	}
	return s.inTx(ctx, func(t tx) error {
		_, err := t.exec(ctx, `INSERT INTO federated_merge_requests (`+mergeRequestCols+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?) ON CONFLICT (id) DO UPDATE SET
				head = CASE WHEN federated_merge_requests.head = '' THEN excluded.head ELSE federated_merge_requests.head END`,
			m.ID, m.ActorID, m.Number, m.OfferID, m.OriginActor, m.OriginRef, m.CloneURL, m.Branch,
			m.TargetBranch, m.Head, micros(m.Created), micros(m.Created))
		if err != nil {
			return fmt.Errorf("store: put merge request %s: %w", m.ID, err)
		}
		return nil
	})
}

// GetMergeRequest implements MergeRequests.
func (s *sqlStore) GetMergeRequest(ctx context.Context, id string) (MergeRequestRecord, error) {
	m, err := scanMergeRequest(s.queryRow(ctx, `SELECT `+mergeRequestCols+` FROM federated_merge_requests WHERE id = ?`, id))
	if err != nil {
		return MergeRequestRecord{}, notFound(err, "merge request "+id)
	}
	return m, nil
}

// OpenMergeRequestsFrom implements MergeRequests.
func (s *sqlStore) OpenMergeRequestsFrom(ctx context.Context, originActor, originRef string) ([]MergeRequestRecord, error) {
	rows, err := s.query(ctx, `SELECT `+mergeRequestCols+` FROM federated_merge_requests
		WHERE origin_actor = ? AND origin_ref = ? AND closed = 0 ORDER BY created, id`, originActor, originRef)
	if err != nil {
		return nil, fmt.Errorf("store: merge requests from %s %s: %w", originActor, originRef, err)
	}
	defer rows.Close()
	var out []MergeRequestRecord
	for rows.Next() {
		m, err := scanMergeRequest(rows)
		if err != nil {
			return nil, fmt.Errorf("store: merge requests from %s %s: %w", originActor, originRef, err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// SetMergeRequestHead implements MergeRequests.
func (s *sqlStore) SetMergeRequestHead(ctx context.Context, id, head string) error {
	return s.updateMergeRequest(ctx, id, `head = ?`, head)
}

// CloseMergeRequest implements MergeRequests.
func (s *sqlStore) CloseMergeRequest(ctx context.Context, id string) error {
	return s.updateMergeRequest(ctx, id, `closed = 1`)
}

func (s *sqlStore) updateMergeRequest(ctx context.Context, id, set string, args ...any) error {
	return s.inTx(ctx, func(t tx) error {
		args = append(args, micros(utcNow()), id)
		res, err := t.exec(ctx, `UPDATE federated_merge_requests SET `+set+`, updated = ? WHERE id = ?`, args...)
		if err != nil {
			return fmt.Errorf("store: merge request %s: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("merge request %s: %w", id, ErrNotFound)
		}
		return nil
	})
}
