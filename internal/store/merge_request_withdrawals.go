package store

import (
	"context"
	"fmt"
)

// MergeRequestWithdrawals is the state a cross-instance merge request needs when the
// person who offered it closes or reopens their pull request on the fork (issue 14,
// docs/merge-requests.md "Withdrawal and reopening"), and when the upstream's own
// pushes to the federated branch are reported back. Store embeds it.
//
// Each setter is a conditional update that says whether the row changed, so that a
// retried activity, a forge webhook about a change Fedforge made itself, and the
// activity that caused it agree on who acts, without a lock.
type MergeRequestWithdrawals interface {
	// SetMergeRequestClosed records the forge state of a federated merge request (upstream
	// side): closed or open, and, when closed, whether Fedforge closed it on the word of the
	// actor that offered it (byOrigin). changed is false, and nothing is written, when the
	// row already says closed (or open); ErrNotFound when there is no row.
	SetMergeRequestClosed(ctx context.Context, id string, closed, byOrigin bool) (changed bool, err error)
	// ReopenWithdrawnMergeRequest marks open a merge request that was closed on the word of
	// the actor that offered it; changed is false for any other (open, or closed by the
	// forge's people), which that actor may not reopen.
	ReopenWithdrawnMergeRequest(ctx context.Context, id string) (changed bool, err error)
	// OpenMergeRequestsOnBranch returns the open merge requests of a local actor whose
	// federated branch is branch, oldest first.
	OpenMergeRequestsOnBranch(ctx context.Context, actorID, branch string) ([]MergeRequestRecord, error)
	// SetOfferWithdrawn records (fork side) that the pull request of an Offer is closed in
	// the local forge (withdrawn) or open again; changed is false when it already was.
	SetOfferWithdrawn(ctx context.Context, offerID string, withdrawn bool) (changed bool, err error)
	// OfferWithdrawn says whether the pull request of an Offer is withdrawn.
	OfferWithdrawn(ctx context.Context, offerID string) (bool, error)
}

// SetMergeRequestClosed implements MergeRequestWithdrawals.
func (s *sqlStore) SetMergeRequestClosed(ctx context.Context, id string, closed, byOrigin bool) (bool, error) {
	c, b := boolInt(closed), boolInt(closed && byOrigin)
	return s.changeRow(ctx, "merge request "+id, `SELECT 1 FROM federated_merge_requests WHERE id = ?`, id,
		`UPDATE federated_merge_requests SET closed = ?, closed_by_origin = ?, updated = ? WHERE id = ? AND closed <> ?`,
		c, b, micros(utcNow()), id, c)
}

// ReopenWithdrawnMergeRequest implements MergeRequestWithdrawals.
func (s *sqlStore) ReopenWithdrawnMergeRequest(ctx context.Context, id string) (bool, error) {
	return s.changeRow(ctx, "merge request "+id, `SELECT 1 FROM federated_merge_requests WHERE id = ?`, id,
		`UPDATE federated_merge_requests SET closed = 0, closed_by_origin = 0, updated = ?
			WHERE id = ? AND closed = 1 AND closed_by_origin = 1`, micros(utcNow()), id)
}

// OpenMergeRequestsOnBranch implements MergeRequestWithdrawals.
func (s *sqlStore) OpenMergeRequestsOnBranch(ctx context.Context, actorID, branch string) ([]MergeRequestRecord, error) {
	rows, err := s.query(ctx, `SELECT `+mergeRequestCols+` FROM federated_merge_requests
		WHERE actor_id = ? AND branch = ? AND closed = 0 ORDER BY created, id`, actorID, branch)
	if err != nil {
		return nil, fmt.Errorf("store: merge requests on %s of %s: %w", branch, actorID, err)
	}
	defer rows.Close()
	var out []MergeRequestRecord
	for rows.Next() {
		m, err := scanMergeRequest(rows)
		if err != nil {
			return nil, fmt.Errorf("store: merge requests on %s of %s: %w", branch, actorID, err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// SetOfferWithdrawn implements MergeRequestWithdrawals.
func (s *sqlStore) SetOfferWithdrawn(ctx context.Context, offerID string, withdrawn bool) (bool, error) {
	w := boolInt(withdrawn)
	return s.changeRow(ctx, "offer "+offerID, `SELECT 1 FROM mr_offered WHERE offer_id = ?`, offerID,
		`UPDATE mr_offered SET withdrawn = ?, updated = ? WHERE offer_id = ? AND withdrawn <> ?`, w, micros(utcNow()), offerID, w)
}

// OfferWithdrawn implements MergeRequestWithdrawals.
func (s *sqlStore) OfferWithdrawn(ctx context.Context, offerID string) (bool, error) {
	var w int64
	if err := s.queryRow(ctx, `SELECT withdrawn FROM mr_offered WHERE offer_id = ?`, offerID).Scan(&w); err != nil {
		return false, notFound(err, "offer "+offerID)
	}
	return w != 0, nil
}

// changeRow runs a conditional update; when it changed nothing, exists tells a row in
// the other state (false, nil) from no row (ErrNotFound).
func (s *sqlStore) changeRow(ctx context.Context, what, exists string, key any, update string, args ...any) (bool, error) {
	var changed bool
	err := s.inTx(ctx, func(t tx) error {
		res, err := t.exec(ctx, update, args...)
		if err != nil {
			return fmt.Errorf("store: %s: %w", what, err)
		}
		if n, _ := res.RowsAffected(); n > 0 {
			changed = true
			return nil
		}
		var one int
		if err := t.queryRow(ctx, exists, key).Scan(&one); err != nil {
			return notFound(err, what)
		}
		return nil
	})
	return changed, err
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
