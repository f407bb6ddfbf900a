package server

import (
	"context"
	"net/http"

	"k8s.io/apimachinery/pkg/types"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
)

// onUndo handles Undo{Follow}: the follower leaves, and its Subscription is removed
// without a Reject. Undo{Like} of a Repository takes the star back (like.go); Undo{Resolve}
// of a pull request offered upstream is a reopening (resolve.go). Undo of
// anything else (Announce) needs no state here.
func (f *federation) onUndo(ctx context.Context, in *inbound) ([]string, error) {
	if out, handled, err := f.undoLike(ctx, in); handled {
		return out, err
	}
	if out, handled, err := f.undoResolve(ctx, in); handled || err != nil { // resolve.go
		return out, err
	}
	act := in.act
	inner := act.Object.Object
	followID := act.Object.ID()
	if inner != nil && len(inner.Type) > 0 && !inner.Type.Has("Follow") {
		return nil, nil
	}
	if inner != nil && inner.Actor.ID() != "" && inner.Actor.ID() != act.Actor.ID() {
		return nil, refuse(http.StatusForbidden, nil, "Undo of a Follow by another actor")
	}
	var targets []fedv1.Subscription
	if followID != "" {
		subs, err := f.subs.list(ctx, indexSubFollow, followID)
		if err != nil {
			return nil, err
		}
		targets = subs
	}
	if len(targets) == 0 && inner != nil && inner.Object.ID() != "" {
		// The Follow ID may differ from the one we saw (a peer re-sent with a new id):
		// match the follower and the followed actor instead.
		la, err := f.actors.byIRI(ctx, inner.Object.ID())
		if err == nil {
			var s fedv1.Subscription
			if err := f.reader.Get(ctx, types.NamespacedName{Namespace: f.srv.Namespace, Name: InboundName(la.obj.Name, act.Actor.ID())}, &s); err == nil {
				targets = append(targets, s)
			}
		}
	}
	var out []string
	for i := range targets {
		s := &targets[i]
		if s.Spec.Direction != fedv1.DirectionInbound || s.Spec.RemoteActor != act.Actor.ID() {
			continue
		}
		if la, err := f.actors.byObject(ctx, s.Spec.ActorRef.Name); err == nil {
			out = append(out, la.urls.ID)
		}
		f.undone(s, true)
		if err := f.subs.deleteQuietly(ctx, s); err != nil {
			return nil, err
		}
	}
	return out, nil
}
