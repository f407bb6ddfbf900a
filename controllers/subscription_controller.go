package controllers

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
)

// SubscriptionReconciler checks a Subscription's references and fills in what can be
// known without talking to the remote server: whether the local actor exists and which
// host the remote actor lives on. The exchange itself (Follow, Accept, Reject, Undo) is the
// server's work; this controller never claims a follow was accepted.
type SubscriptionReconciler struct {
	client.Client
	// Recorder records an Event when the actor reference breaks; nil records none.
	Recorder events.EventRecorder
}

// +kubebuilder:rbac:groups=federation.fedforge.dev,resources=subscriptions,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=federation.fedforge.dev,resources=subscriptions/status,verbs=get;update;patch

// Reconcile sets the ActorFound condition, the remote host and the initial phase. Status
// is written once, on the way out: a failure to read the actor turns Ready False with its
// reason and message (see statusOnExit).
func (r *SubscriptionReconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, err error) {
	sub := &subscriptionT{}
	if err := r.Get(ctx, req.NamespacedName, sub); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !sub.DeletionTimestamp.IsZero() {
		return r.release(ctx, sub)
	}
	base := sub.DeepCopy()
	defer func() {
		res, err = statusOnExit(ctx, r.Client, sub, base, res, err, func() {
			setFailed(&sub.Status.Conditions, sub.Generation, err, fedv1.ConditionReady)
		})
	}()
	if sub.Status.RemoteHost == "" {
		sub.Status.RemoteHost = RemoteHost(sub.Spec.RemoteActor)
	}
	if sub.Status.Phase == "" {
		sub.Status.Phase = fedv1.PhasePending
	}

	found := metav1.Condition{Type: fedv1.ConditionActorFound, Status: metav1.ConditionTrue, Reason: fedv1.ReasonReconciled,
		Message: fmt.Sprintf("FederatedActor %s exists", sub.Spec.ActorRef.Name), ObservedGeneration: sub.Generation}
	switch err := r.Get(ctx, types.NamespacedName{Namespace: sub.Namespace, Name: sub.Spec.ActorRef.Name}, &actorT{}); {
	case apierrors.IsNotFound(err):
		found.Status, found.Reason = metav1.ConditionFalse, fedv1.ReasonActorNotFound
		found.Message = fmt.Sprintf("FederatedActor %q does not exist in namespace %s", sub.Spec.ActorRef.Name, sub.Namespace)
	case err != nil:
		return ctrl.Result{}, fmt.Errorf("reading FederatedActor %s/%s: %w", sub.Namespace, sub.Spec.ActorRef.Name, err)
	}
	warnOnChange(r.Recorder, sub, base.Status.Conditions, found, fedv1.ReasonActorNotFound, fedv1.ActionValidate)
	meta.SetStatusCondition(&sub.Status.Conditions, found)

	ready := metav1.Condition{Type: fedv1.ConditionReady, Status: metav1.ConditionFalse, ObservedGeneration: sub.Generation}
	accepted := meta.FindStatusCondition(sub.Status.Conditions, fedv1.ConditionAccepted)
	switch {
	case found.Status != metav1.ConditionTrue:
		ready.Reason, ready.Message = found.Reason, found.Message
	case accepted != nil && accepted.Status == metav1.ConditionTrue:
		ready.Status, ready.Reason, ready.Message = metav1.ConditionTrue, accepted.Reason, "the follow is in effect"
	case accepted != nil:
		ready.Reason, ready.Message = accepted.Reason, accepted.Message
	default:
		ready.Reason, ready.Message = fedv1.ReasonPending, "waiting for the exchange with the remote server"
	}
	meta.SetStatusCondition(&sub.Status.Conditions, ready)
	sub.Status.ObservedGeneration = sub.Generation
	return ctrl.Result{}, nil
}

// release lets go of a deleted Subscription that no server can answer for: its actor
// or its server is gone (the server itself sends Reject or Undo when it can).
func (r *SubscriptionReconciler) release(ctx context.Context, sub *subscriptionT) (ctrl.Result, error) {
	var actor actorT
	err := r.Get(ctx, types.NamespacedName{Namespace: sub.Namespace, Name: sub.Spec.ActorRef.Name}, &actor)
	if client.IgnoreNotFound(err) != nil {
		return ctrl.Result{}, err
	}
	server := ""
	if err == nil {
		server = actor.Spec.ServerRef.Name
	}
	return releaseExchange(ctx, r.Client, sub, server, time.Now())
}

// RemoteHost returns the host of a remote actor given as a URI or as acct:name@host.
func RemoteHost(remote string) string {
	if rest, ok := strings.CutPrefix(remote, "acct:"); ok {
		if i := strings.LastIndexByte(rest, '@'); i >= 0 {
			return strings.ToLower(rest[i+1:])
		}
		return ""
	}
	u, err := url.Parse(remote)
	if err != nil {
		return ""
	}
	return strings.ToLower(u.Host)
}

// SetupWithManager watches Subscriptions and the actors they name.
func (r *SubscriptionReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("subscription").
		For(&subscriptionT{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, acceptedChanged()))).
		Watches(&actorT{}, handler.EnqueueRequestsFromMapFunc(enqueueByIndex(r.Client, func() client.ObjectList { return &fedv1.SubscriptionList{} }, indexSubscriptionActor, ownName)), builder.WithPredicates(existenceChanged())).
		Complete(r)
}

// existenceChanged passes only creations and deletions: a Subscription cares whether its
// actor exists, not about the actor's every status write.
func existenceChanged() predicate.Funcs {
	return predicate.Funcs{UpdateFunc: func(eventUpdate) bool { return false }}
}

// acceptedChanged wakes the controller when the server changes the Accepted condition, so
// Ready follows it.
func acceptedChanged() predicate.Funcs {
	return predicate.Funcs{UpdateFunc: func(e eventUpdate) bool {
		o := meta.FindStatusCondition(e.ObjectOld.(*subscriptionT).Status.Conditions, fedv1.ConditionAccepted)
		n := meta.FindStatusCondition(e.ObjectNew.(*subscriptionT).Status.Conditions, fedv1.ConditionAccepted)
		return (o == nil) != (n == nil) || (o != nil && n != nil && (o.Status != n.Status || o.Reason != n.Reason))
	}}
}
