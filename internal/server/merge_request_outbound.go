package server

import (
	"context"
	"errors"
	"slices"
	"strings"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/forge"
	"github.com/fedforge/fedforge/internal/render"
	"github.com/fedforge/fedforge/internal/store"
)

// federatedBranchPrefix is the namespace of the branches Fedforge mirrors offered merge
// requests into (federated/<host>/<user>/<branch>, merge_request_write.go).
const federatedBranchPrefix = "federated/"

// zeroCommit is the "after" of a push that deleted a branch.
const zeroCommit = "0000000000000000000000000000000000000000"

// upstreamOfEvent implements sources.WebhookConfig.Upstream (issue 14): where a
// Repository actor's forge event goes besides its usual audience, on either side of a
// cross-instance merge request.
//
// Fork side: a push to the head branch of an open offered pull request is also addressed
// to each upstream holding one (contract step 4); a comment on an offered pull request
// that the upstream accepted replies to the upstream's merge-request Ticket and goes to
// the upstream actor (step 3). Comments Fedforge wrote never get here: the forge reader
// drops them by their key marker.
//
// Upstream side: a push to a federated branch by anyone but Fedforge (whose own mirror
// pushes leave the head it recorded) is also addressed to the actor that offered the
// merge request (step 4, Bob's pushes); the close or reopen of a federated merge request
// is recorded, and when the record already said so (Fedforge made it on the submitter's
// word, resolve_origin.go) it goes to the followers only, not back to the submitter; a
// merge is recorded too, so that a withdrawal that crosses it changes nothing.
func (f *federation) upstreamOfEvent(ctx context.Context, actor *fedv1.FederatedActor, ev *forge.Event) (*render.Upstream, error) {
	if actor.Spec.Type != fedv1.ActorRepository {
		return nil, nil
	}
	switch {
	case ev.Kind == forge.KindPush && ev.Branch != "":
	case ev.Kind == forge.KindComment && ev.OnMergeRequest && ev.Number > 0:
	case ev.Kind == forge.KindMergeRequest && (ev.Action == forge.ActionClosed || ev.Action == forge.ActionReopened || ev.Action == forge.ActionMerged) && ev.Number > 0:
	default:
		return nil, nil
	}
	base, err := f.base(ctx)
	if err != nil {
		return nil, err
	}
	u := urlsFor(base, actor)
	id := u.ID
	switch ev.Kind {
	case forge.KindMergeRequest:
		if ev.Action == forge.ActionMerged {
			// Recorded so that a late withdrawal finds it settled; the merged Resolve
			// goes to the participants whatever the record said.
			if _, err := f.store.SetMergeRequestClosed(ctx, u.MergeRequest(ev.Number), true, false); err != nil && !errors.Is(err, store.ErrNotFound) {
				return nil, err
			}
			return nil, nil
		}
		return f.federatedClosed(ctx, u.MergeRequest(ev.Number), ev.Action == forge.ActionClosed)
	case forge.KindPush:
		open, err := f.store.OpenOfferedMergeRequestsFrom(ctx, id, ev.Branch)
		if err != nil {
			return nil, err
		}
		up := &render.Upstream{}
		for _, m := range open {
			if !slices.Contains(up.PushTo, m.UpstreamID) {
				up.PushTo = append(up.PushTo, m.UpstreamID)
			}
		}
		if strings.HasPrefix(ev.Branch, federatedBranchPrefix) && ev.After != "" && ev.After != zeroCommit {
			recs, err := f.store.OpenMergeRequestsOnBranch(ctx, id, ev.Branch)
			if err != nil {
				return nil, err
			}
			for _, rec := range recs {
				if rec.Head != ev.After && !slices.Contains(up.PushTo, rec.OriginActor) {
					f.log.Info("push to a federated branch by the forge's people: reported to the submitter", "actor", id,
						"branch", ev.Branch, "after", ev.After, "submitter", rec.OriginActor)
					up.PushTo = append(up.PushTo, rec.OriginActor)
				}
			}
		}
		if len(up.PushTo) == 0 {
			return nil, nil
		}
		return up, nil
	}
	offered, err := f.store.OfferedMergeRequestsOf(ctx, id, ev.Number)
	if err != nil {
		return nil, err
	}
	for _, m := range offered {
		if m.TicketID != "" {
			return &render.Upstream{Ticket: m.TicketID, Actor: m.UpstreamID}, nil
		}
	}
	return nil, nil
}

// federatedClosed records that the pull request of federated merge request ticket was
// closed (or reopened) in the forge. When the record already said so, the change is
// Fedforge's own, made on the submitter's word: its Resolve is not sent back to the
// submitter (OwnClose). Any other pull request: nil.
func (f *federation) federatedClosed(ctx context.Context, ticket string, closed bool) (*render.Upstream, error) {
	changed, err := f.store.SetMergeRequestClosed(ctx, ticket, closed, false)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	if changed {
		return nil, nil
	}
	f.log.V(1).Info("close or reopen of a federated merge request made on its submitter's word: not sent back", "ticket", ticket, "closed", closed)
	return &render.Upstream{OwnClose: true}, nil
}
