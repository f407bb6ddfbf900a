package server

import (
	"context"
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
)

// policyEnforcement writes the Enforced condition of each policy attached to this server
// once the server evaluates requests with the policy's current generation. It runs on
// the elected replica and reads the same cache the inbox compiles policies from, so when
// it sees generation N, every request evaluated after the write uses N (other replicas'
// caches may lag by their watch latency). One status write per generation.
type policyEnforcement struct{ f *federation }

func (e *policyEnforcement) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var pol fedv1.FederationPolicy
	if err := e.f.reader.Get(ctx, req.NamespacedName, &pol); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if pol.Spec.TargetRef.Name != e.f.srv.Name || pol.DeletionTimestamp != nil {
		return ctrl.Result{}, nil
	}
	if c := meta.FindStatusCondition(pol.Status.Conditions, fedv1.ConditionEnforced); c != nil &&
		c.Status == metav1.ConditionTrue && c.ObservedGeneration == pol.Generation {
		return ctrl.Result{}, nil
	}
	// Invalidate first: the set loaded now, from a List made after the cache held this
	// generation, is the one every later inbox request uses (policy_cache.go).
	e.f.policies.invalidate()
	cs, err := e.f.policies.load(ctx)
	if err != nil {
		return ctrl.Result{}, err
	}
	if !slices.ContainsFunc(cs, func(c compiledPolicy) bool { return c.name == pol.Name }) {
		return ctrl.Result{}, fmt.Errorf("policy %s is not among the compiled policies", pol.Name)
	}
	gen := pol.Generation
	cond := metav1.Condition{Type: fedv1.ConditionEnforced, Status: metav1.ConditionTrue, Reason: fedv1.ReasonLoaded,
		ObservedGeneration: gen, Message: fmt.Sprintf("FederationServer %s enforces generation %d", e.f.srv.Name, gen)}
	err = patchLiveStatus(ctx, e.f.subs.writer, req.NamespacedName, func(live *fedv1.FederationPolicy) bool {
		// A newer generation is on its way through the cache; it gets its own write.
		return live.Generation == gen && meta.SetStatusCondition(&live.Status.Conditions, cond)
	})
	return ctrl.Result{}, client.IgnoreNotFound(err)
}
