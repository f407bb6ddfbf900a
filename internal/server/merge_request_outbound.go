package server

import (
	"context"
	"slices"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/forge"
	"github.com/fedforge/fedforge/internal/render"
)

// upstreamOfEvent implements sources.WebhookConfig.Upstream (issue 14, fork side): what a
// Repository actor's forge event owes the upstream its pull requests were offered to. A
// push to the head branch of an open offered pull request is also addressed to each
// upstream holding one (contract step 4); a comment on an offered pull request that the
// upstream accepted replies to the upstream's merge-request Ticket and goes to the
// upstream actor (step 3). Comments Fedforge wrote never get here: the forge reader
// drops them by their key marker.
func (f *federation) upstreamOfEvent(ctx context.Context, actor *fedv1.FederatedActor, ev *forge.Event) (*render.Upstream, error) {
	if actor.Spec.Type != fedv1.ActorRepository {
		return nil, nil
	}
	switch {
	case ev.Kind == forge.KindPush && ev.Branch != "":
	case ev.Kind == forge.KindComment && ev.OnMergeRequest && ev.Number > 0:
	default:
		return nil, nil
	}
	base, err := f.base(ctx)
	if err != nil {
		return nil, err
	}
	id := urlsFor(base, actor).ID
	if ev.Kind == forge.KindPush {
		open, err := f.store.OpenOfferedMergeRequestsFrom(ctx, id, ev.Branch)
		if err != nil || len(open) == 0 {
			return nil, err
		}
		up := &render.Upstream{}
		for _, m := range open {
			if !slices.Contains(up.PushTo, m.UpstreamID) {
				up.PushTo = append(up.PushTo, m.UpstreamID)
			}
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
