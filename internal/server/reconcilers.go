package server

import (
	"context"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	crhandler "sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
)

// setupControllers registers the exchanges, which run on the elected replica only.
func (s *Server) setupControllers() error {
	opts := controller.Options{MaxConcurrentReconciles: 16, SkipNameValidation: ptrTrue()}
	if err := ctrl.NewControllerManagedBy(s.mgr).Named("subscription-exchange").WithOptions(opts).
		For(&fedv1.Subscription{}).
		Watches(&fedv1.FederatedActor{}, crhandler.EnqueueRequestsFromMapFunc(s.subscriptionsOfActor), builder.WithPredicates()).
		Complete(&subscriptionExchange{f: s.fed}); err != nil {
		return err
	}
	if err := ctrl.NewControllerManagedBy(s.mgr).Named("policy-enforcement").WithOptions(opts).
		For(&fedv1.FederationPolicy{}).
		Complete(&policyEnforcement{f: s.fed}); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(s.mgr).Named("actor-exchange").WithOptions(opts).
		For(&fedv1.FederatedActor{}).
		Watches(&corev1.Secret{}, crhandler.EnqueueRequestsFromMapFunc(actorOfSecret)).
		Watches(&fedv1.Subscription{}, crhandler.EnqueueRequestsFromMapFunc(actorOfSubscription)).
		Complete(&actorExchange{f: s.fed})
}

func ptrTrue() *bool { b := true; return &b }

// subscriptionsOfActor requeues an actor's Subscriptions when the actor changes (its
// keys arrive, manual approval is switched).
func (s *Server) subscriptionsOfActor(ctx context.Context, o client.Object) []reconcile.Request {
	subs, err := s.fed.subs.list(ctx, indexSubActor, o.GetName())
	if err != nil {
		return nil
	}
	out := make([]reconcile.Request, 0, len(subs))
	for _, sub := range subs {
		out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: sub.Namespace, Name: sub.Name}})
	}
	return out
}

func actorOfSecret(_ context.Context, o client.Object) []reconcile.Request {
	if a := o.GetLabels()[fedv1.LabelActor]; a != "" {
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: a}}}
	}
	return nil
}

func actorOfSubscription(_ context.Context, o client.Object) []reconcile.Request {
	s := o.(*fedv1.Subscription)
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: s.Namespace, Name: s.Spec.ActorRef.Name}}}
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
