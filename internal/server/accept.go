package server

import (
	"context"
	"net/http"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
)

// onAccept handles Accept or Reject (the verb table sends both here) of a Follow a local
// actor sent. An answer to anything else (an Offer{Ticket} a local actor posted to its
// outbox: the Accept names the Ticket opened, a Reject says why) is filed for the local
// actors it is addressed to, who read it in their inbox.
func (f *federation) onAccept(ctx context.Context, in *inbound) ([]string, error) {
	act := in.act
	inner := act.Object.Object
	if inner != nil && len(inner.Type) > 0 && !inner.Type.Has("Follow") {
		return f.addressees(ctx, act, in.recipient)
	}
	subs, err := f.subs.list(ctx, indexSubFollow, act.Object.ID())
	if err != nil {
		return nil, err
	}
	if len(subs) == 0 {
		return f.addressees(ctx, act, in.recipient)
	}
	var out []string
	for i := range subs {
		s := &subs[i]
		if s.Spec.Direction != fedv1.DirectionOutbound {
			continue
		}
		if s.Status.RemoteActorID != act.Actor.ID() {
			return nil, refuse(http.StatusForbidden, nil, "%s answered a Follow sent to %s", act.Actor.ID(), s.Status.RemoteActorID)
		}
		accepted := act.Type[0] == "Accept"
		if la, err := f.actors.byObject(ctx, s.Spec.ActorRef.Name); err == nil {
			out = append(out, la.urls.ID)
		}
		now := metav1.NewTime(f.now())
		if err := f.subs.patchStatus(ctx, client.ObjectKeyFromObject(s), func(s *fedv1.Subscription) {
			c := metav1.Condition{Type: fedv1.ConditionAccepted, ObservedGeneration: s.Generation}
			if accepted {
				s.Status.Phase, s.Status.AcceptedAt = fedv1.PhaseAccepted, &now
				c.Status, c.Reason, c.Message = metav1.ConditionTrue, fedv1.ReasonAccepted, "the remote actor accepted the follow"
			} else {
				s.Status.Phase, s.Status.AcceptedAt = fedv1.PhaseRejected, nil
				c.Status, c.Reason, c.Message = metav1.ConditionFalse, fedv1.ReasonRejected, "the remote actor rejected the follow"
			}
			meta.SetStatusCondition(&s.Status.Conditions, c)
		}); err != nil {
			return nil, err
		}
		f.remoteAnswered(s, accepted)
	}
	return out, nil
}
