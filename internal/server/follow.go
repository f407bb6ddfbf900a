package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/delivery"
	"github.com/fedforge/fedforge/internal/store"
)

// Cache indexes of Subscriptions.
const (
	indexSubActor  = "fedforge.sub.actor"  // spec.actorRef.name
	indexSubRemote = "fedforge.sub.remote" // spec.remoteActor and status.remoteActorId
	indexSubFollow = "fedforge.sub.follow" // status.followActivityId
	indexSubHost   = "fedforge.sub.host"   // status.remoteHost
)

// indexSubscriptions registers the Subscription indexes on c; it must run before c starts.
func indexSubscriptions(ctx context.Context, c cache.Cache) error {
	idx := map[string]func(*fedv1.Subscription) []string{
		indexSubActor: func(s *fedv1.Subscription) []string { return []string{s.Spec.ActorRef.Name} },
		indexSubRemote: func(s *fedv1.Subscription) []string {
			out := []string{s.Spec.RemoteActor}
			if id := s.Status.RemoteActorID; id != "" && id != s.Spec.RemoteActor {
				out = append(out, id)
			}
			return out
		},
		indexSubFollow: func(s *fedv1.Subscription) []string {
			if s.Status.FollowActivityID == "" {
				return nil
			}
			return []string{s.Status.FollowActivityID}
		},
		indexSubHost: func(s *fedv1.Subscription) []string {
			if s.Status.RemoteHost == "" {
				return nil
			}
			return []string{s.Status.RemoteHost}
		},
	}
	for name, fn := range idx {
		fn := fn
		if err := c.IndexField(ctx, &fedv1.Subscription{}, name, func(o client.Object) []string { return fn(o.(*fedv1.Subscription)) }); err != nil {
			return err
		}
	}
	return nil
}

// subscriptions lists this namespace's Subscriptions matching an index value. The items
// are the cache's own objects: callers must copy before changing them.
func (f *federation) subscriptions(ctx context.Context, index, value string) ([]fedv1.Subscription, error) {
	var list fedv1.SubscriptionList
	if err := f.reader.List(ctx, &list, client.InNamespace(f.srv.Namespace), client.MatchingFields{index: value}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	return list.Items, nil
}

func (f *federation) subscriptionsOfRemote(ctx context.Context, remoteID string) ([]fedv1.Subscription, error) {
	return f.subscriptions(ctx, indexSubRemote, remoteID)
}

// InboundName is the deterministic name of the Subscription of a remote follower of a
// local actor: a second Follow finds the same object.
func InboundName(actorName, remoteID string) string {
	return subscriptionName(actorName, "in", remoteID)
}

// subscriptionName is <actor>-<direction>-<hash of the remote actor>, within 253 bytes.
func subscriptionName(actorName, dir, remoteID string) string {
	sum := sha256.Sum256([]byte(remoteID))
	if len(actorName) > 200 {
		actorName = strings.TrimRight(actorName[:200], "-.")
	}
	return actorName + "-" + dir + "-" + hex.EncodeToString(sum[:6])
}

// onFollow turns a Follow of a local actor into an Inbound Subscription, or answers it
// with a Reject when a policy limit is reached. The Accept itself is sent by the
// Subscription reconciler, so that a manual approval and a restart take the same path.
func (f *federation) onFollow(ctx context.Context, act *activitypub.Object, v verdict) ([]string, error) {
	la, err := f.localActorByIRI(ctx, act.Object.ID())
	if errors.Is(err, errNotLocal) {
		return nil, refuse(http.StatusNotFound, nil, "Follow of %q, which is not an actor here", act.Object.ID())
	} else if err != nil {
		return nil, err
	}
	follower := act.Actor.ID()
	host := delivery.HostOf(follower)
	name := InboundName(la.obj.Name, follower)
	key := types.NamespacedName{Namespace: f.srv.Namespace, Name: name}
	var existing fedv1.Subscription
	err = f.reader.Get(ctx, key, &existing)
	if client.IgnoreNotFound(err) != nil {
		return nil, err
	}
	sub := &existing
	if apierrors.IsNotFound(err) {
		if reason, over := f.overLimit(ctx, la, host, v); over {
			f.refused.add(refusedFollow, f.now(), v.limitedBy...)
			return []string{la.urls.ID}, f.rejectFollow(ctx, act, reason)
		}
		sub = &fedv1.Subscription{
			ObjectMeta: metav1.ObjectMeta{Namespace: f.srv.Namespace, Name: name, Labels: map[string]string{
				fedv1.LabelManagedBy: fedv1.ManagedByValue, fedv1.LabelServer: f.srv.Name, fedv1.LabelActor: la.obj.Name,
			}},
			Spec: fedv1.SubscriptionSpec{Direction: fedv1.DirectionInbound, ActorRef: fedv1.LocalObjectReference{Name: la.obj.Name}, RemoteActor: follower},
		}
		if err := f.kube.Create(ctx, sub); err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("creating Subscription %s: %w", name, err)
		}
	}
	// Answer at once (the common case: one status write, the Accept queued and the
	// executor kicked); the Subscription reconciler answers the same way after a manual
	// approval, a failure here or a restart. Each Follow ID gets its own Accept, so a
	// repeated Follow is answered again.
	sub = sub.DeepCopy()
	sub.Status.FollowActivityID = act.ID
	if _, err := f.answerFollow(ctx, la, sub); err == nil {
		return []string{la.urls.ID}, nil
	} else {
		f.log.Info("answering a Follow failed; the reconciler retries", "follower", follower, "error", err.Error())
	}
	return []string{la.urls.ID}, f.patchSubscriptionStatus(ctx, key, func(s *fedv1.Subscription) {
		s.Status.FollowActivityID = act.ID
		s.Status.RemoteActorID = follower
		s.Status.RemoteHost = host
		if s.Status.Phase == "" {
			s.Status.Phase = fedv1.PhasePending
		}
	})
}

// overLimit checks the follower limits of the attached policies.
func (f *federation) overLimit(ctx context.Context, la *localActor, host string, v verdict) (string, bool) {
	if max := v.maxFollowersPerActor; max != nil {
		subs, err := f.subscriptions(ctx, indexSubActor, la.obj.Name)
		if err == nil {
			n := 0
			for _, s := range subs {
				if s.Spec.Direction == fedv1.DirectionInbound && s.Status.Phase != fedv1.PhaseRejected && s.DeletionTimestamp == nil {
					n++
				}
			}
			if n >= int(*max) {
				return "MaxFollowersPerActor", true
			}
		}
	}
	if max := v.maxSubscriptionsPerHost; max != nil {
		subs, err := f.subscriptions(ctx, indexSubHost, host)
		if err == nil {
			n := 0
			for _, s := range subs {
				if s.Status.Phase != fedv1.PhaseRejected && s.DeletionTimestamp == nil {
					n++
				}
			}
			if n >= int(*max) {
				return "MaxSubscriptionsPerHost", true
			}
		}
	}
	return "", false
}

// rejectFollow answers a Follow that creates no Subscription (refused host, limits) with
// a signed Reject to the follower's inbox.
func (f *federation) rejectFollow(ctx context.Context, follow *activitypub.Object, reason string) error {
	la, err := f.localActorByIRI(ctx, follow.Object.ID())
	if errors.Is(err, errNotLocal) {
		return refuse(http.StatusNotFound, nil, "Follow of %q, which is not an actor here", follow.Object.ID())
	} else if err != nil {
		return err
	}
	signer, err := f.signerFor(ctx, la)
	if err != nil {
		return err
	}
	ra, err := f.remoteActor(ctx, follow.Actor.ID(), signer, false)
	if err != nil {
		return err
	}
	f.log.Info("rejecting a follow", "actor", la.obj.Name, "follower", follow.Actor.ID(), "reason", reason)
	return f.publish(ctx, la, answer("Reject", la.urls.ID, follow.ID, follow.Actor.ID(), la.urls.ID), store.Direct, []Recipient{{Inbox: ra.Inbox}})
}

// answer builds Accept or Reject of a Follow, embedding the Follow so that peers match it
// by id or by actor and object, as Mastodon does.
func answer(kind, localID, followID, followerID, followee string) *activitypub.Object {
	follow := &activitypub.Object{ID: followID, Type: activitypub.Types{"Follow"}, Actor: activitypub.IRIRef(followerID), Object: activitypub.IRIRef(followee)}
	return activitypub.NewActivity(kind, activityID(localID, kind, followID), localID, activitypub.ObjectRef(follow), activitypub.IRIRefs(followerID), nil)
}

// onUndo handles Undo{Follow}: the follower leaves, and its Subscription is removed
// without a Reject. Undo of anything else (Like, Announce) needs no state here.
func (f *federation) onUndo(ctx context.Context, act *activitypub.Object) ([]string, error) {
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
		subs, err := f.subscriptions(ctx, indexSubFollow, followID)
		if err != nil {
			return nil, err
		}
		targets = subs
	}
	if len(targets) == 0 && inner != nil && inner.Object.ID() != "" {
		// The Follow ID may differ from the one we saw (a peer re-sent with a new id):
		// match the follower and the followed actor instead.
		la, err := f.localActorByIRI(ctx, inner.Object.ID())
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
		if la, err := f.localActorByObject(ctx, s.Spec.ActorRef.Name); err == nil {
			out = append(out, la.urls.ID)
		}
		if err := f.deleteQuietly(ctx, s); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// deleteQuietly deletes a Subscription whose exchange the remote side already ended:
// the annotation tells its finalizer to send nothing.
func (f *federation) deleteQuietly(ctx context.Context, s *fedv1.Subscription) error {
	key := client.ObjectKeyFromObject(s)
	patch := []byte(fmt.Sprintf(`{"metadata":{"annotations":{%q:"true"}}}`, AnnotationNoExchange))
	obj := &fedv1.Subscription{}
	obj.Namespace, obj.Name = key.Namespace, key.Name
	if err := f.kube.Patch(ctx, obj, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return client.IgnoreNotFound(err)
	}
	return client.IgnoreNotFound(f.kube.Delete(ctx, obj))
}

// onAnswer handles Accept or Reject of a Follow a local actor sent.
func (f *federation) onAnswer(ctx context.Context, act *activitypub.Object) ([]string, error) {
	inner := act.Object.Object
	if inner != nil && len(inner.Type) > 0 && !inner.Type.Has("Follow") {
		return nil, nil // an answer to something we did not send
	}
	subs, err := f.subscriptions(ctx, indexSubFollow, act.Object.ID())
	if err != nil {
		return nil, err
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
		if la, err := f.localActorByObject(ctx, s.Spec.ActorRef.Name); err == nil {
			out = append(out, la.urls.ID)
		}
		now := metav1.NewTime(f.now())
		if err := f.patchSubscriptionStatus(ctx, client.ObjectKeyFromObject(s), func(s *fedv1.Subscription) {
			c := metav1.Condition{Type: fedv1.ConditionAccepted, ObservedGeneration: s.Generation}
			if accepted {
				s.Status.Phase, s.Status.AcceptedAt = fedv1.PhaseAccepted, &now
				c.Status, c.Reason, c.Message = metav1.ConditionTrue, ReasonAccepted, "the remote actor accepted the follow"
			} else {
				s.Status.Phase, s.Status.AcceptedAt = fedv1.PhaseRejected, nil
				c.Status, c.Reason, c.Message = metav1.ConditionFalse, ReasonRejected, "the remote actor rejected the follow"
			}
			meta.SetStatusCondition(&s.Status.Conditions, c)
		}); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// expectsPosts reports whether an Outbound Subscription asks for the remote actor's
// posts: it is Accepted, or its Follow was sent and the answer is outstanding. The second
// case covers a post that overtakes the Accept (a peer delivers both at once) and a cache
// that has not yet seen the Accept this server just recorded.
func expectsPosts(s *fedv1.Subscription) bool {
	if s.Spec.Direction != fedv1.DirectionOutbound || s.DeletionTimestamp != nil {
		return false
	}
	return s.Status.Phase == fedv1.PhaseAccepted || (s.Status.Phase == fedv1.PhasePending && s.Status.FollowActivityID != "")
}

// patchSubscriptionStatus applies change to the live Subscription's status with an
// optimistic lock, retrying on conflicts.
func (f *federation) patchSubscriptionStatus(ctx context.Context, key types.NamespacedName, change func(*fedv1.Subscription)) error {
	return patchLiveStatus(ctx, f, key, func(s *fedv1.Subscription) bool {
		before := s.Status.DeepCopy()
		change(s)
		return !equality.Semantic.DeepEqual(*before, s.Status) // nothing to write: re-runs cost no API-server writes
	})
}

// patchLiveStatus reads the object at key live, lets change edit it (false: nothing to
// write) and patches its status with an optimistic lock, reading again after a conflict
// (at most 5 retries). The server writes the status of objects the operator writes too,
// so it never patches from a cached copy.
func patchLiveStatus[T any, PT interface {
	*T
	client.Object
}](ctx context.Context, f *federation, key types.NamespacedName, change func(PT) bool) error {
	for attempt := 0; ; attempt++ {
		obj := PT(new(T))
		if err := f.api.Get(ctx, key, obj); err != nil {
			return err
		}
		base := obj.DeepCopyObject().(client.Object)
		if !change(obj) {
			return nil
		}
		err := f.kube.Status().Patch(ctx, obj, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
		if err == nil || !apierrors.IsConflict(err) || attempt >= 5 {
			return err
		}
	}
}

// Reasons of the Accepted condition, set by the server.
const (
	ReasonAccepted         = "Accepted"
	ReasonRejected         = "Rejected"
	ReasonAwaitingApproval = "AwaitingApproval"
	ReasonPolicyDenied     = "PolicyDenied"
	ReasonResolveFailed    = "ResolveFailed"
	ReasonFollowSent       = "FollowSent"
)
