package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/delivery"
	"github.com/fedforge/fedforge/internal/store"
	"github.com/fedforge/fedforge/internal/urls"
)

// farewellWait bounds how long a deleted actor waits for its Delete to reach its
// followers before its finalizer is removed (and its keys with it).
const farewellWait = 10 * time.Minute

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

// conflictRequeue is how soon an exchange that lost a write race runs again (as the
// operator's controllers/common.go).
const conflictRequeue = 200 * time.Millisecond

// quietConflict turns an optimistic-lock conflict into a requeue after conflictRequeue.
func quietConflict(res ctrl.Result, err error) (ctrl.Result, error) {
	if apierrors.IsConflict(err) {
		return ctrl.Result{RequeueAfter: conflictRequeue}, nil
	}
	return res, err
}

func (e *subscriptionExchange) reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	f := e.f
	var s fedv1.Subscription
	if err := f.reader.Get(ctx, req.NamespacedName, &s); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	la, err := f.localActorByObject(ctx, s.Spec.ActorRef.Name)
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
		return ctrl.Result{}, f.removeFinalizer(ctx, &s)
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
		return f.publish(ctx, la, answer("Reject", la.urls.ID, s.Status.FollowActivityID, remote, la.urls.ID), store.Direct, to)
	}
	follow := followActivity(la.urls.ID, s.Status.FollowActivityID, remote)
	follow.Context = nil
	undo := activitypub.NewActivity("Undo", activityID(la.urls.ID, "Undo", s.Status.FollowActivityID), la.urls.ID, activitypub.ObjectRef(follow), activitypub.IRIRefs(remote), nil)
	return f.publish(ctx, la, undo, store.Direct, to)
}

func followActivity(localID, id, remote string) *activitypub.Object {
	return activitypub.NewActivity("Follow", id, localID, activitypub.IRIRef(remote), activitypub.IRIRefs(remote), nil)
}

func (f *federation) removeFinalizer(ctx context.Context, o client.Object) error {
	patch := client.MergeFromWithOptions(o.DeepCopyObject().(client.Object), client.MergeFromWithOptimisticLock{})
	if controllerutil.RemoveFinalizer(o, FinalizerExchange) {
		return client.IgnoreNotFound(f.kube.Patch(ctx, o, patch))
	}
	return nil
}

// setAccepted records the outcome of an exchange in the Accepted condition and phase.
func setAccepted(s *fedv1.Subscription, phase fedv1.SubscriptionPhase, status metav1.ConditionStatus, reason, msg string) {
	s.Status.Phase = phase
	meta.SetStatusCondition(&s.Status.Conditions, metav1.Condition{Type: fedv1.ConditionAccepted, Status: status, Reason: reason, Message: msg, ObservedGeneration: s.Generation})
}

// resolveRemote fills the remote actor's inboxes into the status when missing.
func (f *federation) resolveRemote(ctx context.Context, la *localActor, s *fedv1.Subscription, remoteID string) (*store.RemoteActor, error) {
	signer, err := f.signerFor(ctx, la)
	if err != nil {
		return nil, err
	}
	return f.remoteActor(ctx, remoteID, signer, false)
}

// answerFollow answers an Inbound Subscription's Follow: Accept, Reject, or wait for
// spec.approved when the actor approves followers manually.
func (f *federation) answerFollow(ctx context.Context, la *localActor, s *fedv1.Subscription) (ctrl.Result, error) {
	key := client.ObjectKeyFromObject(s)
	followID := s.Status.FollowActivityID
	if followID == "" {
		return ctrl.Result{}, f.patchSubscriptionStatus(ctx, key, func(s *fedv1.Subscription) {
			if s.Status.FollowActivityID == "" {
				setAccepted(s, fedv1.PhasePending, metav1.ConditionFalse, "NoFollow", "no Follow activity was received for this Subscription; Inbound Subscriptions are created by the server")
			}
		})
	}
	ra, err := f.resolveRemote(ctx, la, s, s.Spec.RemoteActor)
	if err != nil {
		_ = f.patchSubscriptionStatus(ctx, key, func(s *fedv1.Subscription) {
			setAccepted(s, s.Status.Phase, metav1.ConditionFalse, ReasonResolveFailed, truncate(err.Error(), 1000))
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
		phase, cond, reason, msg = fedv1.PhaseRejected, metav1.ConditionFalse, ReasonRejected, "the follow was refused (spec.approved is false)"
	case la.obj.Spec.ManuallyApprovesFollowers && s.Spec.Approved == nil:
		phase, cond, reason, msg = fedv1.PhaseAwaitingApproval, metav1.ConditionFalse, ReasonAwaitingApproval,
			"the actor approves followers manually: set spec.approved to true or false"
	default:
		kind = "Accept"
		phase, cond, reason, msg = fedv1.PhaseAccepted, metav1.ConditionTrue, ReasonAccepted, "Accept sent to "+ra.Inbox
	}
	// The status is written before the answer is sent, and an Accept waits until this
	// server's cache has the follower: a follower that holds our Accept is in every
	// fan-out from then on (publishing reads followers from the cache). A failure after
	// the status write is retried by the reconciler, which answers again; the answer's
	// id derives from the Follow's, so the store sends it once.
	now := metav1.NewTime(f.now())
	err = f.patchSubscriptionStatus(ctx, key, func(s *fedv1.Subscription) {
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
		return ctrl.Result{}, err
	}
	if kind == "Accept" {
		if err := f.awaitCachedFollower(ctx, key, ra.Inbox); err != nil {
			return ctrl.Result{}, err
		}
	}
	return ctrl.Result{}, f.publish(ctx, la, answer(kind, la.urls.ID, followID, ra.ID, la.urls.ID), store.Direct, to)
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

// follow drives an Outbound Subscription: resolve the handle, check the policy, send the
// Follow once, then wait for the inbox to record Accept or Reject.
func (f *federation) follow(ctx context.Context, la *localActor, s *fedv1.Subscription) (ctrl.Result, error) {
	key := client.ObjectKeyFromObject(s)
	if s.Status.Phase == fedv1.PhaseAccepted || s.Status.Phase == fedv1.PhaseRejected {
		return ctrl.Result{}, nil
	}
	fail := func(reason string, err error, retry time.Duration) (ctrl.Result, error) {
		perr := f.patchSubscriptionStatus(ctx, key, func(s *fedv1.Subscription) {
			phase := fedv1.PhasePending
			if reason == ReasonPolicyDenied {
				phase = fedv1.PhaseRejected
			}
			setAccepted(s, phase, metav1.ConditionFalse, reason, truncate(err.Error(), 1000))
		})
		if perr != nil {
			return ctrl.Result{}, perr
		}
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
		return fail(ReasonPolicyDenied, fmt.Errorf("a FederationPolicy refuses %s", host), 0)
	}
	remoteID := s.Status.RemoteActorID
	if remoteID == "" {
		remoteID = s.Spec.RemoteActor
		if strings.HasPrefix(remoteID, "acct:") {
			jrd, err := f.client.WebFinger(ctx, remoteID)
			if err != nil {
				return fail(ReasonResolveFailed, fmt.Errorf("WebFinger %s: %w", remoteID, err), time.Minute)
			}
			if remoteID = jrd.SelfLink(); remoteID == "" {
				return fail(ReasonResolveFailed, fmt.Errorf("WebFinger %s has no ActivityPub self link", s.Spec.RemoteActor), 10*time.Minute)
			}
		}
	}
	if v, err := f.policies.evaluate(ctx, delivery.HostOf(remoteID)); err != nil {
		return ctrl.Result{}, err
	} else if !v.allowed {
		f.refused.add(refusedDelivery, f.now(), v.by...)
		return fail(ReasonPolicyDenied, fmt.Errorf("a FederationPolicy refuses %s", delivery.HostOf(remoteID)), 0)
	}
	ra, err := f.resolveRemote(ctx, la, s, remoteID)
	if err != nil {
		return fail(ReasonResolveFailed, fmt.Errorf("fetching %s: %w", remoteID, err), time.Minute)
	}
	followID := s.Status.FollowActivityID
	if followID == "" {
		// Recorded before it is sent, so an Accept can always be matched.
		followID = activityID(la.urls.ID, "Follow", string(s.UID))
		if err := f.patchSubscriptionStatus(ctx, key, func(s *fedv1.Subscription) {
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
	return ctrl.Result{}, f.patchSubscriptionStatus(ctx, key, func(s *fedv1.Subscription) {
		s.Status.RemoteActorID, s.Status.RemoteHost = ra.ID, delivery.HostOf(ra.ID)
		s.Status.RemoteInbox, s.Status.RemoteSharedInbox = ra.Inbox, ra.SharedInbox
		if s.Status.Phase != fedv1.PhaseAccepted && s.Status.Phase != fedv1.PhaseRejected {
			setAccepted(s, fedv1.PhasePending, metav1.ConditionFalse, ReasonFollowSent, "Follow sent to "+ra.Inbox+"; waiting for Accept")
		}
	})
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// actorExchange publishes what followers must learn about a local actor: an Update when
// its document changes (profile or key rotation), and a Delete when it is deleted, held
// by a finalizer until the Delete has gone out.
type actorExchange struct{ f *federation }

// Reconcile implements reconcile.Reconciler.
func (e *actorExchange) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return quietConflict(e.reconcile(ctx, req))
}

func (e *actorExchange) reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	f := e.f
	var a fedv1.FederatedActor
	if err := f.reader.Get(ctx, req.NamespacedName, &a); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if a.Spec.ServerRef.Name != f.srv.Name {
		return ctrl.Result{}, nil
	}
	base, fs, err := f.baseURL(ctx)
	if errors.Is(err, errNoServer) {
		return ctrl.Result{}, nil
	} else if err != nil {
		return ctrl.Result{}, err
	}
	la := &localActor{obj: &a, urls: urlsFor(base, &a)}
	if !a.DeletionTimestamp.IsZero() {
		if !controllerutil.ContainsFinalizer(&a, FinalizerExchange) {
			return ctrl.Result{}, nil
		}
		wait, err := f.sayGoodbye(ctx, la)
		if err != nil {
			return ctrl.Result{}, err
		}
		if wait > 0 && time.Since(a.DeletionTimestamp.Time) < farewellWait {
			return ctrl.Result{RequeueAfter: wait}, nil
		}
		return ctrl.Result{}, f.removeFinalizer(ctx, &a)
	}
	if !controllerutil.ContainsFinalizer(&a, FinalizerExchange) {
		patch := client.MergeFrom(a.DeepCopy())
		controllerutil.AddFinalizer(&a, FinalizerExchange)
		return ctrl.Result{}, f.kube.Patch(ctx, &a, patch)
	}
	h := &handler{reader: f.reader, server: f.srv}
	doc, err := h.actorDocument(ctx, fs, &a)
	if errors.Is(err, errNoKeys) {
		return ctrl.Result{}, nil // the key Secret's arrival requeues us
	} else if err != nil {
		return ctrl.Result{}, err
	}
	raw, err := doc.MarshalJSON()
	if err != nil {
		return ctrl.Result{}, err
	}
	sum := sha256.Sum256(raw)
	updID := activityID(la.urls.ID, "Update", hex.EncodeToString(sum[:]))
	// Every Subscription change requeues the actor: when this document was announced
	// already, stop before listing the followers (one store read, not a fan-out's work).
	if _, err := f.store.GetActivity(ctx, updID); err == nil {
		return ctrl.Result{}, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return ctrl.Result{}, err
	}
	followers, err := f.followers(ctx, la)
	if err != nil {
		return ctrl.Result{}, err
	}
	doc.Context = nil
	upd := activitypub.NewActivity("Update", updID, la.urls.ID, activitypub.ObjectRef(doc), activitypub.IRIRefs(activitypub.PublicIRI), activitypub.IRIRefs(la.urls.Followers()))
	if len(followers) == 0 {
		// Nobody to tell. The Update is recorded all the same (sent to no one), so that
		// the next follower, who reads this document when following, is not sent it.
		return ctrl.Result{}, f.publishAs(ctx, la, la.urls.ID, upd, store.Direct, nil)
	}
	// Announcing rotated keys: sign with the previous key while it lasts, so followers
	// that cached it verify the Update and learn the new key from it.
	signAs := la.urls.ID
	if _, err := f.previousSigner(ctx, la); err == nil {
		signAs += previousKeySuffix
	}
	return ctrl.Result{}, f.publishAs(ctx, la, signAs, upd, store.Direct, followers)
}

// sayGoodbye sends Delete{actor} to every follower, removes the actor's Subscriptions
// without further exchanges, and reports how long to wait for the Delete to go out.
func (f *federation) sayGoodbye(ctx context.Context, la *localActor) (time.Duration, error) {
	followers, err := f.followers(ctx, la)
	if err != nil {
		return 0, err
	}
	del := activitypub.NewActivity("Delete", la.urls.ID+"#delete", la.urls.ID, activitypub.IRIRef(la.urls.ID), activitypub.IRIRefs(activitypub.PublicIRI), nil)
	if len(followers) > 0 {
		if _, err := f.signerFor(ctx, la); err != nil {
			f.log.Info("actor deleted without keys: its followers cannot be told", "actor", la.obj.Name)
		} else if err := f.publish(ctx, la, del, store.Direct, followers); err != nil {
			return 0, err
		}
	}
	subs, err := f.subscriptions(ctx, indexSubActor, la.obj.Name)
	if err != nil {
		return 0, err
	}
	for i := range subs {
		if err := f.deleteQuietly(ctx, &subs[i]); err != nil {
			return 0, err
		}
	}
	// Re-runs find no followers (their Subscriptions are gone) but still wait for the
	// Delete queued by the first run.
	n, err := f.store.PendingDeliveries(ctx, del.ID)
	if err != nil || n == 0 {
		return 0, err
	}
	return 5 * time.Second, nil
}

// followers returns the inboxes of an actor's accepted followers.
func (f *federation) followers(ctx context.Context, la *localActor) ([]Recipient, error) {
	subs, err := f.subscriptions(ctx, indexSubActor, la.obj.Name)
	if err != nil {
		return nil, err
	}
	// Policies apply to outbound exchanges too: a follower on a host refused since it
	// followed gets nothing more (the refusal is counted as a delivery). They are loaded
	// once per fan-out and evaluated once per host.
	cs, err := f.policies.load(ctx)
	if err != nil {
		return nil, err
	}
	verdicts := map[string]verdict{}
	var out []Recipient
	for _, s := range subs {
		if s.Spec.Direction != fedv1.DirectionInbound || s.Status.Phase != fedv1.PhaseAccepted || s.Status.RemoteInbox == "" {
			continue
		}
		host := delivery.HostOf(s.Status.RemoteInbox)
		v, seen := verdicts[host]
		if !seen {
			v = verdictFor(cs, host)
			verdicts[host] = v
		}
		if !v.allowed {
			f.refused.add(refusedDelivery, f.now(), v.by...)
			continue
		}
		out = append(out, Recipient{Inbox: s.Status.RemoteInbox, SharedInbox: s.Status.RemoteSharedInbox})
	}
	return out, nil
}

func urlsFor(base string, a *fedv1.FederatedActor) urls.Actor {
	return urls.ForActor(base, a.Spec.PreferredUsername)
}
