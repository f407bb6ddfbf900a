package controllers

import (
	"context"
	"fmt"
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
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/urls"
)

// FederatedActorReconciler publishes an actor's identity in status (ID, handle, inbox,
// outbox, key IDs), counts its accepted followers, refuses duplicate usernames on one
// server, and sums it all up in the Ready condition. When spec.forge is set it also
// checks the forge (forge_probe.go) and reports ForgeReachable and status.forge.
type FederatedActorReconciler struct {
	client.Client
	// APIReader reads the forge token Secret uncached (the cache holds only the Secrets
	// Fedforge manages); the Client when nil.
	APIReader client.Reader
	// Recorder records an Event when the server reference breaks or the username is
	// taken; nil records none.
	Recorder events.EventRecorder
}

// +kubebuilder:rbac:groups=federation.fedforge.dev,resources=federatedactors,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=federation.fedforge.dev,resources=federatedactors/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=federation.fedforge.dev,resources=federationservers,verbs=get;list;watch
// +kubebuilder:rbac:groups=federation.fedforge.dev,resources=subscriptions,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get

// Reconcile computes one actor's status from its server, its key condition and its
// Subscriptions. Status is written once, on the way out: a failure turns Ready False
// with its reason and message (see statusOnExit).
func (r *FederatedActorReconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, err error) {
	actor := &actorT{}
	if err := r.Get(ctx, req.NamespacedName, actor); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !actor.DeletionTimestamp.IsZero() {
		return releaseExchange(ctx, r.Client, actor, actor.Spec.ServerRef.Name, time.Now())
	}
	base := actor.DeepCopy()
	defer func() {
		res, err = statusOnExit(ctx, r.Client, actor, base, res, err, func() {
			setFailed(&actor.Status.Conditions, actor.Generation, err, fedv1.ConditionReady)
		})
	}()

	followers, err := r.countFollowers(ctx, actor)
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("counting followers: %w", err)
	}
	actor.Status.Followers = &followers

	ready := metav1.Condition{Type: fedv1.ConditionReady, Status: metav1.ConditionTrue, Reason: fedv1.ReasonReconciled, ObservedGeneration: actor.Generation}
	server := &serverT{}
	err = r.Get(ctx, types.NamespacedName{Namespace: actor.Namespace, Name: actor.Spec.ServerRef.Name}, server)
	switch {
	case apierrors.IsNotFound(err):
		ready.Status, ready.Reason = metav1.ConditionFalse, fedv1.ReasonServerNotFound
		ready.Message = fmt.Sprintf("FederationServer %q does not exist in namespace %s", actor.Spec.ServerRef.Name, actor.Namespace)
	case err != nil:
		return ctrl.Result{}, fmt.Errorf("reading FederationServer %s/%s: %w", actor.Namespace, actor.Spec.ServerRef.Name, err)
	default:
		a := urls.ForActor(server.BaseURL(), actor.Spec.PreferredUsername)
		actor.Status.ID = a.ID
		actor.Status.Handle = urls.Handle(actor.Spec.PreferredUsername, server.Spec.Host)
		actor.Status.Inbox = a.Inbox()
		actor.Status.Outbox = a.Outbox()
		if actor.Status.Keys == nil {
			actor.Status.Keys = &fedv1.ActorKeys{}
		}
		actor.Status.Keys.RSAKeyID = a.RSAKeyID()
		actor.Status.Keys.Ed25519KeyID = a.Ed25519KeyID()
		ready.Message = "served at " + a.ID
		if other, err := r.usernameTakenBy(ctx, actor); err != nil {
			return ctrl.Result{}, fmt.Errorf("checking preferredUsername: %w", err)
		} else if other != "" {
			ready.Status, ready.Reason = metav1.ConditionFalse, fedv1.ReasonUsernameConflict
			ready.Message = fmt.Sprintf("preferredUsername %q is already used by FederatedActor %s on server %s", actor.Spec.PreferredUsername, other, server.Name)
		}
		res.RequeueAfter = r.forgeProbe(ctx, actor, server, time.Now())
	}
	if ready.Status == metav1.ConditionTrue {
		switch kc := meta.FindStatusCondition(actor.Status.Conditions, fedv1.ConditionKeyReady); {
		case kc == nil:
			ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, fedv1.ReasonKeysPending, "waiting for the signing keys"
		case kc.Status != metav1.ConditionTrue:
			ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, kc.Reason, "signing keys: "+kc.Message
		}
	}
	warnOnChange(r.Recorder, actor, base.Status.Conditions, ready, fedv1.ReasonServerNotFound, fedv1.ActionValidate)
	warnOnChange(r.Recorder, actor, base.Status.Conditions, ready, fedv1.ReasonUsernameConflict, fedv1.ActionValidate)
	meta.SetStatusCondition(&actor.Status.Conditions, ready)
	if ready.Status == metav1.ConditionTrue {
		actor.Status.ObservedGeneration = actor.Generation
	}
	return res, nil
}

// countFollowers counts accepted inbound Subscriptions from the informer cache.
func (r *FederatedActorReconciler) countFollowers(ctx context.Context, actor *actorT) (int32, error) {
	var subs fedv1.SubscriptionList
	if err := r.List(ctx, &subs, client.InNamespace(actor.Namespace), client.MatchingFields{indexSubscriptionActor: actor.Name}); err != nil {
		return 0, err
	}
	var n int32
	for i := range subs.Items {
		s := &subs.Items[i]
		if s.Spec.Direction == fedv1.DirectionInbound && s.Status.Phase == fedv1.PhaseAccepted && s.DeletionTimestamp.IsZero() {
			n++
		}
	}
	return n, nil
}

// usernameTakenBy returns the name of an older actor of the same server with the same
// preferredUsername (compared case-insensitively, as WebFinger does), or "".
func (r *FederatedActorReconciler) usernameTakenBy(ctx context.Context, actor *actorT) (string, error) {
	var actors fedv1.FederatedActorList
	if err := r.List(ctx, &actors, client.InNamespace(actor.Namespace), client.MatchingFields{indexActorServer: actor.Spec.ServerRef.Name}); err != nil {
		return "", err
	}
	for i := range actors.Items {
		o := &actors.Items[i]
		if o.Name == actor.Name || !strings.EqualFold(o.Spec.PreferredUsername, actor.Spec.PreferredUsername) {
			continue
		}
		older := o.CreationTimestamp.Before(&actor.CreationTimestamp) ||
			(o.CreationTimestamp.Equal(&actor.CreationTimestamp) && o.Name < actor.Name)
		if older {
			return o.Name, nil
		}
	}
	return "", nil
}

// SetupWithManager watches actors, their servers and their Subscriptions.
func (r *FederatedActorReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("federatedactor").
		For(&actorT{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, keyConditionChanged()))).
		Watches(&serverT{}, handler.EnqueueRequestsFromMapFunc(enqueueByIndex(r.Client, actorList, indexActorServer, ownName))).
		Watches(&actorT{}, handler.EnqueueRequestsFromMapFunc(enqueueByIndex(r.Client, actorList, indexActorServer, func(o client.Object) string {
			return o.(*actorT).Spec.ServerRef.Name
		})), builder.WithPredicates(predicate.Funcs{
			CreateFunc: func(event.CreateEvent) bool { return false },
			UpdateFunc: func(event.UpdateEvent) bool { return false },
			DeleteFunc: func(event.DeleteEvent) bool { return true },
		})).
		Watches(&subscriptionT{}, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
			s := o.(*subscriptionT)
			return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: s.Namespace, Name: s.Spec.ActorRef.Name}}}
		})).
		Complete(r)
}

// actorList is the list kind the actor controller's map functions read. A deleted actor
// wakes the other actors of its server through it, so that a username conflict resolves
// when the older actor goes.
func actorList() client.ObjectList { return &fedv1.FederatedActorList{} }

// keyConditionChanged lets a change of the KeyReady condition, written by the key
// controller, wake the actor controller.
func keyConditionChanged() predicate.Funcs {
	return predicate.Funcs{
		UpdateFunc: func(e eventUpdate) bool {
			o, n := e.ObjectOld.(*actorT), e.ObjectNew.(*actorT)
			oc := meta.FindStatusCondition(o.Status.Conditions, fedv1.ConditionKeyReady)
			nc := meta.FindStatusCondition(n.Status.Conditions, fedv1.ConditionKeyReady)
			return (oc == nil) != (nc == nil) || (oc != nil && nc != nil && oc.Status != nc.Status)
		},
	}
}
