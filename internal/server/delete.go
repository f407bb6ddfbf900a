package server

import (
	"context"
)

// onDelete handles Delete of a remote actor (actor == object): its Subscriptions in
// both directions are removed, quietly, and its cached document and keys forgotten.
// Deletes of objects are kept in the received log; a deleted Note that was written as a
// forge comment has its comment deleted too (replies.go).
func (f *federation) onDelete(ctx context.Context, in *inbound) ([]string, error) {
	act := in.act
	actorID := act.Actor.ID()
	if act.Object.ID() != actorID {
		if handled, err := f.deleteTicketComment(ctx, act); err != nil {
			return nil, err
		} else if !handled {
			if err := f.deleteOfferedComment(ctx, act); err != nil { // merge_request_notes.go
				return nil, err
			}
		}
		return f.addressees(ctx, act, nil)
	}
	out, err := f.removeRemote(ctx, actorID)
	if err != nil {
		return nil, err
	}
	if err := f.store.DeleteRemoteActor(ctx, actorID); err != nil {
		return nil, err
	}
	return out, nil
}

// removeRemote deletes every Subscription naming a remote actor and returns the local
// actors concerned.
func (f *federation) removeRemote(ctx context.Context, actorID string) ([]string, error) {
	subs, err := f.subs.ofRemote(ctx, actorID)
	if err != nil {
		return nil, err
	}
	var out []string
	for i := range subs {
		if la, err := f.actors.byObject(ctx, subs[i].Spec.ActorRef.Name); err == nil {
			out = append(out, la.urls.ID)
		}
		if err := f.subs.deleteQuietly(ctx, &subs[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}
