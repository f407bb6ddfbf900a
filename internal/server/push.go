package server

import (
	"context"
	"slices"

	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/forgewrite"
)

// onPush handles a ForgeFed Push. It is filed for its addressees like any post; when its
// sender is the origin of open federated merge requests here (the Push's target is a
// Branch of the sender's own repository: context the sender, or no context, and its ref),
// each of them gets a durable forge write that fetches the branch again and updates the
// federated branch, so that the pull request shows the new commits
// (docs/merge-requests.md, step 4). A Push from the upstream about the federated branch of
// a pull request offered from here is reported on that pull request
// (merge_request_upstream_push.go). A Push about any other branch changes nothing.
func (f *federation) onPush(ctx context.Context, in *inbound) ([]string, error) {
	act := in.act
	recipients, err := f.addressees(ctx, act, in.recipient)
	if err != nil {
		return nil, err
	}
	actorID := act.Actor.ID()
	tb := act.Target.Object
	if tb == nil || !tb.Type.Has(activitypub.TypeBranch) || (tb.ASContext.ID() != "" && tb.ASContext.ID() != actorID) {
		f.log.V(1).Info("a Push without a Branch of its sender's repository as target is filed only", "push", act.ID, "from", actorID)
		return recipients, nil
	}
	ref := tb.Ref
	if ref == "" && tb.Name != "" {
		ref = "refs/heads/" + tb.Name
	}
	if out, handled, err := f.upstreamPush(ctx, act, ref); err != nil { // merge_request_upstream_push.go
		return nil, err
	} else if handled {
		for _, id := range out {
			if !slices.Contains(recipients, id) {
				recipients = append(recipients, id)
			}
		}
		return recipients, nil
	}
	mrs, err := f.store.OpenMergeRequestsFrom(ctx, actorID, ref)
	if err != nil {
		return nil, err
	}
	if len(mrs) == 0 {
		f.log.V(1).Info("a Push for a branch with no open merge request here is ignored", "push", act.ID, "from", actorID, "ref", ref)
		return recipients, nil
	}
	for _, m := range mrs {
		// One write per merge request: the key is the Push's id with the merge request's.
		err := f.tickets.queue(ctx, m.ActorID, forgewrite.Op{Kind: forgewrite.KindMergeRequestUpdate, Number: m.Number,
			Origin: forgewrite.Origin{ActivityID: act.ID + "#" + m.ID, ActorID: actorID, TicketID: m.ID}})
		if err != nil {
			return nil, err
		}
		if !slices.Contains(recipients, m.ActorID) {
			recipients = append(recipients, m.ActorID)
		}
	}
	return recipients, nil
}
