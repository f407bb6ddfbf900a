package server

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/delivery"
	"github.com/fedforge/fedforge/internal/store"
)

// followActivity builds the Follow a local actor sends to a remote one.
func followActivity(localID, id, remote string) *activitypub.Object {
	return activitypub.NewActivity("Follow", id, localID, activitypub.IRIRef(remote), activitypub.IRIRefs(remote), nil)
}

// answerFollow answers an Inbound Subscription's Follow: Accept, Reject, or wait for
// spec.approved when the actor approves followers manually.
func (f *federation) answerFollow(ctx context.Context, la *localActor, s *fedv1.Subscription) (ctrl.Result, error) {
	key := client.ObjectKeyFromObject(s)
	followID := s.Status.FollowActivityID
	if followID == "" {
		return ctrl.Result{}, f.subs.patchStatus(ctx, key, func(s *fedv1.Subscription) {
			if s.Status.FollowActivityID == "" {
				setAccepted(s, fedv1.PhasePending, metav1.ConditionFalse, fedv1.ReasonNoFollow, "no Follow activity was received for this Subscription; Inbound Subscriptions are created by the server")
			}
		})
	}
	ra, err := f.resolveRemote(ctx, la, s, s.Spec.RemoteActor)
	if err != nil {
		_ = f.subs.patchStatus(ctx, key, func(s *fedv1.Subscription) {
			setAccepted(s, s.Status.Phase, metav1.ConditionFalse, fedv1.ReasonResolveFailed, truncate(err.Error(), 1000))
		})
		return ctrl.Result{}, fmt.Errorf("resolving follower %s: %w", s.Spec.RemoteActor, err)
	}
	to := []Recipient{{Inbox: ra.Inbox}}
	var phase fedv1.SubscriptionPhase
	var cond metav1.ConditionStatus
	var reason, msg, kind string
	switch {
	case s.Spec.Approved != nil && !*s.Spec.Approved:
		kind = "Reject"
		phase, cond, reason, msg = fedv1.PhaseRejected, metav1.ConditionFalse, fedv1.ReasonRejected, "the follow was refused (spec.approved is false)"
	case la.obj.Spec.ManuallyApprovesFollowers && s.Spec.Approved == nil:
		phase, cond, reason, msg = fedv1.PhaseAwaitingApproval, metav1.ConditionFalse, fedv1.ReasonAwaitingApproval,
			"the actor approves followers manually: set spec.approved to true or false"
	default:
		kind = "Accept"
		phase, cond, reason, msg = fedv1.PhaseAccepted, metav1.ConditionTrue, fedv1.ReasonAccepted, "Accept sent to "+ra.Inbox
	}
	// The status is written before the answer is sent, and an Accept waits until this
	// server's cache has the follower: a follower that holds our Accept is in every
	// fan-out from then on (publishing reads followers from the cache). A failure after
	// the status write is retried by the reconciler, which answers again; the answer's
	// id derives from the Follow's, so the store sends it once.
	now := metav1.NewTime(f.now())
	err = f.subs.patchStatus(ctx, key, func(s *fedv1.Subscription) {
		s.Status.FollowActivityID = followID
		s.Status.RemoteActorID, s.Status.RemoteHost = ra.ID, delivery.HostOf(ra.ID)
		s.Status.RemoteInbox, s.Status.RemoteSharedInbox = ra.Inbox, ra.SharedInbox
		if phase == fedv1.PhaseAccepted && s.Status.AcceptedAt == nil {
			s.Status.AcceptedAt = &now
		} else if phase != fedv1.PhaseAccepted {
			s.Status.AcceptedAt = nil
		}
		setAccepted(s, phase, cond, reason, msg)
	})
	if err != nil || kind == "" {
		if err == nil && s.Status.Phase != phase {
			f.answered(s, kind, ra.Inbox)
		}
		return ctrl.Result{}, err
	}
	if kind == "Accept" {
		if err := f.awaitCachedFollower(ctx, key, ra.Inbox); err != nil {
			return ctrl.Result{}, err
		}
	}
	if err := f.publish(ctx, la, answer(kind, la.urls.ID, followID, ra.ID, la.urls.ID), store.Direct, to); err != nil {
		return ctrl.Result{}, err
	}
	if s.Status.Phase != phase { // an Event per change, not per reconcile
		f.answered(s, kind, ra.Inbox)
	}
	if kind == "Reject" {
		// The Reject is queued durably (and its id derives from the Follow's, so a retry
		// sends it once); the refused follow request goes, as on Mastodon, and nothing
		// more is sent for it. A new Follow from the same actor asks again.
		return ctrl.Result{}, f.subs.deleteQuietly(ctx, s)
	}
	return ctrl.Result{}, nil
}

// cacheWait bounds how long an Accept waits for the cache to show its follower.
const cacheWait = 10 * time.Second

// awaitCachedFollower waits until the informer cache shows the Subscription as an
// accepted follower with its inbox, the state a fan-out reads.
func (f *federation) awaitCachedFollower(ctx context.Context, key types.NamespacedName, inbox string) error {
	ctx, cancel := context.WithTimeout(ctx, cacheWait)
	defer cancel()
	for {
		var s fedv1.Subscription
		err := f.reader.Get(ctx, key, &s)
		if err == nil && s.Status.Phase == fedv1.PhaseAccepted && s.Status.RemoteInbox == inbox {
			return nil
		}
		if client.IgnoreNotFound(err) != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the cache did not show follower %s as accepted within %s", key.Name, cacheWait)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// answer builds Accept or Reject of a Follow, embedding the Follow so that peers match it
// by id or by actor and object, as Mastodon does.
func answer(kind, localID, followID, followerID, followee string) *activitypub.Object {
	follow := &activitypub.Object{ID: followID, Type: activitypub.Types{"Follow"}, Actor: activitypub.IRIRef(followerID), Object: activitypub.IRIRef(followee)}
	return activitypub.NewActivity(kind, activityID(localID, kind, followID), localID, activitypub.ObjectRef(follow), activitypub.IRIRefs(followerID), nil)
}
