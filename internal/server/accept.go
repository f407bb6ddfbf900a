package server

import (
	"context"
	"net/http"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
)

// onAccept handles Accept or Reject (the verb table sends both here) of a Follow a local
// actor sent. An answer to anything else (an Offer{Ticket} a local actor posted to its
// outbox: the Accept names the Ticket opened, a Reject says why) is filed for the local
// actors it is addressed to, who read it in their inbox; one of a pull request offered
// upstream is also written on the pull request (merge_request_answer.go).
func (f *federation) onAccept(ctx context.Context, in *inbound) ([]string, error) {
	act := in.act
	if err := f.answerMergeRequestOffer(ctx, in); err != nil { // merge_request_answer.go
		return nil, err
	}
	inner := act.Object.Object
	if inner != nil && len(inner.Type) > 0 && !inner.Type.Has("Follow") {
		return f.addressees(ctx, act, in.recipient)
	}
	subs, err := f.answeredFollow(ctx, act.Object.ID())
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

// followCacheWait bounds how long an answer waits for the cache to show the Follow it
// answers.
const followCacheWait = 5 * time.Second

// answeredFollow returns the Subscriptions whose Follow has id followID, from the cache.
// A peer can answer within milliseconds of our Follow (a Reject from a policy is sent
// from the inbox request itself), before this server's cache shows the status that
// records the Follow's id; then an answer to a Follow of ours (an id under our own
// origin) waits for the cache, so that the answer is not dropped while the Subscription
// stays Pending. Answers to anything else are not waited for.
func (f *federation) answeredFollow(ctx context.Context, followID string) ([]fedv1.Subscription, error) {
	subs, err := f.subs.list(ctx, indexSubFollow, followID)
	if err != nil || len(subs) > 0 {
		return subs, err
	}
	origin, err := f.actors.publicOrigin(ctx)
	if err != nil || !strings.HasPrefix(followID, strings.TrimSuffix(origin.String(), "/")+"/") ||
		!strings.Contains(followID, "/activities/follow-") {
		// Not one of our Follows (their ids come from activityID(..., "Follow", ...)): an
		// answer to an Offer posted to an outbox, say, which is filed without waiting.
		return nil, nil
	}
	deadline := time.NewTimer(followCacheWait)
	defer deadline.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-deadline.C:
			f.log.Info("an answer names a Follow of ours that no Subscription records; ignored", "follow", followID)
			return nil, nil
		case <-time.After(20 * time.Millisecond):
		}
		if subs, err = f.subs.list(ctx, indexSubFollow, followID); err != nil || len(subs) > 0 {
			return subs, err
		}
	}
}
