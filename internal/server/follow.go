package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/delivery"
	"github.com/fedforge/fedforge/internal/store"
)

// onFollow turns a Follow of a local actor into an Inbound Subscription, or answers it
// with a Reject when a policy limit is reached. The Accept itself is sent by the
// Subscription reconciler, so that a manual approval and a restart take the same path.
func (f *federation) onFollow(ctx context.Context, in *inbound) ([]string, error) {
	act := in.act
	v := in.verdict
	la, err := f.actors.byIRI(ctx, act.Object.ID())
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
		if la.obj.Spec.MovedTo != "" {
			// A moved actor takes no new followers (move_local.go); its followers
			// keep their Subscriptions.
			return []string{la.urls.ID}, f.rejectFollow(ctx, act, refusalMoved)
		}
		if reason, over := f.overLimit(ctx, la, host, v); over {
			f.refused.add(refusedFollow, f.now(), v.limitedBy...)
			return []string{la.urls.ID}, f.rejectFollow(ctx, act, reason, v.limitedBy...)
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
	f.followReceived(sub, act.ID)
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
	return []string{la.urls.ID}, f.subs.patchStatus(ctx, key, func(s *fedv1.Subscription) {
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
		subs, err := f.subs.list(ctx, indexSubActor, la.obj.Name)
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
		subs, err := f.subs.list(ctx, indexSubHost, host)
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
// by names the policies that refused, for the Event.
func (f *federation) rejectFollow(ctx context.Context, follow *activitypub.Object, reason string, by ...string) error {
	la, err := f.actors.byIRI(ctx, follow.Object.ID())
	if errors.Is(err, errNotLocal) {
		return refuse(http.StatusNotFound, nil, "Follow of %q, which is not an actor here", follow.Object.ID())
	} else if err != nil {
		return err
	}
	signer, err := f.actors.signerFor(ctx, la)
	if err != nil {
		return err
	}
	ra, err := f.remoteActor(ctx, follow.Actor.ID(), signer, false)
	if err != nil {
		return err
	}
	f.log.Info("rejecting a follow", "actor", la.obj.Name, "follower", follow.Actor.ID(), "reason", reason)
	if err := f.publish(ctx, la, answer("Reject", la.urls.ID, follow.ID, follow.Actor.ID(), la.urls.ID), store.Direct, []Recipient{{Inbox: ra.Inbox}}); err != nil {
		return err
	}
	f.followRefused(ctx, la, follow.Actor.ID(), reason, by)
	return nil
}
