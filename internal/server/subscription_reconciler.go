package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/delivery"
	"github.com/fedforge/fedforge/internal/lookup"
	"github.com/fedforge/fedforge/internal/store"
)

// subscriptionExchange drives the protocol side of each Subscription of this server:
// Accept or Reject for Inbound ones (after manual approval where asked), WebFinger, Follow
// for Outbound ones, and Reject or Undo when one is deleted. It is level-based: every
// activity it sends has a deterministic ID, so a re-run republishes nothing.
type subscriptionExchange struct{ f *federation }

// Reconcile implements reconcile.Reconciler. An optimistic-lock conflict ("the object
// has been modified": another writer changed the Subscription since it was read) is a
// quiet requeue, not an error, as every status writer of the project does
// (docs/decisions.md, Status writes).
func (e *subscriptionExchange) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return quietConflict(e.reconcile(ctx, req))
}

func (e *subscriptionExchange) reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	f := e.f
	var s fedv1.Subscription
	if err := f.reader.Get(ctx, req.NamespacedName, &s); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	la, err := f.actors.byObject(ctx, s.Spec.ActorRef.Name)
	if errors.Is(err, errNotLocal) {
		return ctrl.Result{}, nil // another server's, or its actor is gone (the manager then releases it)
	} else if err != nil {
		return ctrl.Result{}, err
	}
	if !s.DeletionTimestamp.IsZero() {
		if !controllerutil.ContainsFinalizer(&s, FinalizerExchange) {
			return ctrl.Result{}, nil
		}
		if s.Annotations[AnnotationNoExchange] != "true" {
			if err := f.farewell(ctx, la, &s); err != nil {
				return ctrl.Result{}, err
			}
		}
		return ctrl.Result{}, f.subs.removeFinalizer(ctx, &s)
	}
	if !controllerutil.ContainsFinalizer(&s, FinalizerExchange) {
		patch := client.MergeFrom(s.DeepCopy())
		controllerutil.AddFinalizer(&s, FinalizerExchange)
		return ctrl.Result{}, f.kube.Patch(ctx, &s, patch)
	}
	if s.Spec.Direction == fedv1.DirectionInbound {
		return f.answerFollow(ctx, la, &s)
	}
	return f.follow(ctx, la, &s)
}

// farewell sends what ends an exchange the local side ends: Reject to a follower whose
// Subscription is deleted, Undo of the Follow for an Outbound one.
func (f *federation) farewell(ctx context.Context, la *localActor, s *fedv1.Subscription) error {
	if s.Status.FollowActivityID == "" || s.Status.RemoteInbox == "" || s.Status.Phase == fedv1.PhaseRejected {
		return nil // nothing was sent, or the exchange is already over
	}
	to := []Recipient{{Inbox: s.Status.RemoteInbox}}
	remote := s.Status.RemoteActorID
	if s.Spec.Direction == fedv1.DirectionInbound {
		err := f.publish(ctx, la, answer("Reject", la.urls.ID, s.Status.FollowActivityID, remote, la.urls.ID), store.Direct, to)
		if err == nil {
			f.farewellSent(s)
		}
		return err
	}
	follow := followActivity(la.urls.ID, s.Status.FollowActivityID, remote)
	follow.Context = nil
	undo := activitypub.NewActivity("Undo", activityID(la.urls.ID, "Undo", s.Status.FollowActivityID), la.urls.ID, activitypub.ObjectRef(follow), activitypub.IRIRefs(remote), nil)
	err := f.publish(ctx, la, undo, store.Direct, to)
	if err == nil {
		f.undone(s, false)
	}
	return err
}

// resolveRemote fills the remote actor's inboxes into the status when missing.
func (f *federation) resolveRemote(ctx context.Context, la *localActor, s *fedv1.Subscription, remoteID string) (*store.RemoteActor, error) {
	signer, err := f.actors.signerFor(ctx, la)
	if err != nil {
		return nil, err
	}
	return f.remoteActor(ctx, remoteID, signer, false)
}

// follow drives an Outbound Subscription: resolve the handle, check the policy, send the
// Follow once, then wait for the inbox to record Accept or Reject.
func (f *federation) follow(ctx context.Context, la *localActor, s *fedv1.Subscription) (ctrl.Result, error) {
	key := client.ObjectKeyFromObject(s)
	if s.Status.Phase == fedv1.PhaseAccepted || s.Status.Phase == fedv1.PhaseRejected {
		return ctrl.Result{}, nil
	}
	fail := func(reason string, err error, retry time.Duration) (ctrl.Result, error) {
		perr := f.subs.patchStatus(ctx, key, func(s *fedv1.Subscription) {
			phase := fedv1.PhasePending
			if reason == fedv1.ReasonPolicyDenied {
				phase = fedv1.PhaseRejected
			}
			setAccepted(s, phase, metav1.ConditionFalse, reason, truncate(err.Error(), 1000))
		})
		if perr != nil {
			return ctrl.Result{}, perr
		}
		f.outboundFailed(s, reason, err)
		return ctrl.Result{RequeueAfter: retry}, nil
	}
	host := delivery.HostOf(s.Spec.RemoteActor)
	if strings.HasPrefix(s.Spec.RemoteActor, "acct:") {
		host = strings.ToLower(s.Spec.RemoteActor[strings.LastIndexByte(s.Spec.RemoteActor, '@')+1:])
	}
	if v, err := f.policies.evaluate(ctx, host); err != nil {
		return ctrl.Result{}, err
	} else if !v.allowed {
		f.refused.add(refusedDelivery, f.now(), v.by...)
		return fail(fedv1.ReasonPolicyDenied, fmt.Errorf("a FederationPolicy refuses %s (%s)", host, strings.Join(v.by, ", ")), 0)
	}
	remoteID := s.Status.RemoteActorID
	if remoteID == "" {
		// As every lookup (internal/lookup): a handle through WebFinger; an address the
		// network guard refuses is not fetched.
		t, err := lookup.Parse(s.Spec.RemoteActor)
		if err == nil && !t.IsHandle() {
			err = lookup.CheckURL(f.client, t.URL)
		}
		if err == nil {
			remoteID, err = lookup.ID(ctx, f.client, t)
		}
		if err != nil {
			// An unknown account is retried every minute, as before: the actor may
			// simply not be served yet (its keys are being made). A refused address
			// or a malformed remoteActor needs a person.
			retry := time.Minute
			if lookup.Status(err) == http.StatusBadRequest {
				retry = 10 * time.Minute
			}
			return fail(fedv1.ReasonResolveFailed, fmt.Errorf("resolving %s: %w", s.Spec.RemoteActor, err), retry)
		}
	}
	if v, err := f.policies.evaluate(ctx, delivery.HostOf(remoteID)); err != nil {
		return ctrl.Result{}, err
	} else if !v.allowed {
		f.refused.add(refusedDelivery, f.now(), v.by...)
		return fail(fedv1.ReasonPolicyDenied, fmt.Errorf("a FederationPolicy refuses %s (%s)", delivery.HostOf(remoteID), strings.Join(v.by, ", ")), 0)
	}
	ra, err := f.resolveRemote(ctx, la, s, remoteID)
	var notActor *lookup.NotAnActorError
	if errors.As(err, &notActor) {
		return fail(fedv1.ReasonNotAnActor, fmt.Errorf("spec.remoteActor: %w: nothing to follow", err), 10*time.Minute)
	} else if err != nil {
		return fail(fedv1.ReasonResolveFailed, fmt.Errorf("fetching %s: %w", remoteID, err), time.Minute)
	}
	followID := s.Status.FollowActivityID
	first := followID == ""
	if first {
		// Recorded before it is sent, so an Accept can always be matched.
		followID = activityID(la.urls.ID, "Follow", string(s.UID))
		if err := f.subs.patchStatus(ctx, key, func(s *fedv1.Subscription) {
			s.Status.FollowActivityID = followID
			s.Status.RemoteActorID, s.Status.RemoteHost = ra.ID, delivery.HostOf(ra.ID)
			s.Status.RemoteInbox, s.Status.RemoteSharedInbox = ra.Inbox, ra.SharedInbox
		}); err != nil {
			return ctrl.Result{}, err
		}
	}
	if err := f.publish(ctx, la, followActivity(la.urls.ID, followID, ra.ID), store.Direct, []Recipient{{Inbox: ra.Inbox}}); err != nil {
		return ctrl.Result{}, err
	}
	if first {
		f.followSent(s, ra.Inbox)
	}
	return ctrl.Result{}, f.subs.patchStatus(ctx, key, func(s *fedv1.Subscription) {
		s.Status.RemoteActorID, s.Status.RemoteHost = ra.ID, delivery.HostOf(ra.ID)
		s.Status.RemoteInbox, s.Status.RemoteSharedInbox = ra.Inbox, ra.SharedInbox
		if s.Status.Phase != fedv1.PhaseAccepted && s.Status.Phase != fedv1.PhaseRejected {
			setAccepted(s, fedv1.PhasePending, metav1.ConditionFalse, fedv1.ReasonFollowSent, "Follow sent to "+ra.Inbox+"; waiting for Accept")
		}
	})
}
