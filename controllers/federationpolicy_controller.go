package controllers

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/policy"
)

// FederationPolicyReconciler reports whether a policy is attached to an existing server
// and whether its blocklist ConfigMap parses. Enforcement happens in the server, which
// writes the refused counts.
type FederationPolicyReconciler struct {
	client.Client
}

// +kubebuilder:rbac:groups=federation.fedforge.dev,resources=federationpolicies,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=federation.fedforge.dev,resources=federationpolicies/status,verbs=get;update;patch
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get;list;watch

// Reconcile sets Attached, BlocklistLoaded and Ready. Status is written once, on the way
// out: a failure to read the server or the ConfigMap turns Ready False with its reason and
// message (see statusOnExit).
func (r *FederationPolicyReconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, err error) {
	pol := &policyT{}
	if err := r.Get(ctx, req.NamespacedName, pol); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	base := pol.DeepCopy()
	gen := pol.Generation
	defer func() {
		res, err = statusOnExit(ctx, r.Client, pol, base, res, err, func() {
			setFailed(&pol.Status.Conditions, gen, err, fedv1.ConditionReady)
		})
	}()

	attached := metav1.Condition{Type: fedv1.ConditionAttached, Status: metav1.ConditionTrue, Reason: fedv1.ReasonReconciled,
		Message: fmt.Sprintf("enforced by FederationServer %s", pol.Spec.TargetRef.Name), ObservedGeneration: gen}
	switch err := r.Get(ctx, types.NamespacedName{Namespace: pol.Namespace, Name: pol.Spec.TargetRef.Name}, &serverT{}); {
	case apierrors.IsNotFound(err):
		attached.Status, attached.Reason = metav1.ConditionFalse, fedv1.ReasonServerNotFound
		attached.Message = fmt.Sprintf("FederationServer %q does not exist in namespace %s", pol.Spec.TargetRef.Name, pol.Namespace)
	case err != nil:
		return ctrl.Result{}, fmt.Errorf("reading FederationServer %s/%s: %w", pol.Namespace, pol.Spec.TargetRef.Name, err)
	}
	pol.Status.Attached = attached.Status == metav1.ConditionTrue
	meta.SetStatusCondition(&pol.Status.Conditions, attached)

	loaded := metav1.Condition{Type: fedv1.ConditionBlocklistLoaded, Status: metav1.ConditionTrue, Reason: fedv1.ReasonReconciled,
		Message: "no blocklist configured", ObservedGeneration: gen}
	pol.Status.BlocklistEntries = 0
	if ref := pol.Spec.BlocklistRef; ref != nil {
		n, reason, msg, err := r.loadBlocklist(ctx, pol.Namespace, ref)
		if err != nil {
			return ctrl.Result{}, err
		}
		pol.Status.BlocklistEntries = int32(n)
		loaded.Message = msg
		if reason != "" {
			loaded.Status, loaded.Reason = metav1.ConditionFalse, reason
		}
	}
	meta.SetStatusCondition(&pol.Status.Conditions, loaded)

	ready := metav1.Condition{Type: fedv1.ConditionReady, Status: metav1.ConditionTrue, Reason: fedv1.ReasonReconciled, Message: "policy in force", ObservedGeneration: gen}
	for _, c := range []metav1.Condition{attached, loaded} {
		if c.Status != metav1.ConditionTrue {
			ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, c.Reason, c.Message
			break
		}
	}
	meta.SetStatusCondition(&pol.Status.Conditions, ready)
	pol.Status.ObservedGeneration = gen
	return ctrl.Result{}, nil
}

// loadBlocklist reads and parses the blocklist; a missing or invalid list is a condition,
// not an error, since retrying will not fix it until someone edits the ConfigMap.
func (r *FederationPolicyReconciler) loadBlocklist(ctx context.Context, ns string, ref *fedv1.ConfigMapKeyReference) (int, string, string, error) {
	key := ref.Key
	if key == "" {
		key = "blocklist.csv"
	}
	cm := &corev1.ConfigMap{}
	if err := r.Get(ctx, types.NamespacedName{Namespace: ns, Name: ref.Name}, cm); err != nil {
		if apierrors.IsNotFound(err) {
			return 0, fedv1.ReasonBlocklistNotFound, fmt.Sprintf("ConfigMap %q does not exist", ref.Name), nil
		}
		return 0, "", "", fmt.Errorf("reading ConfigMap %s/%s: %w", ns, ref.Name, err)
	}
	data, ok := cm.Data[key]
	if !ok {
		return 0, fedv1.ReasonBlocklistNotFound, fmt.Sprintf("ConfigMap %q has no key %q", ref.Name, key), nil
	}
	entries, err := policy.ParseBlocklist(strings.NewReader(data))
	if err != nil {
		return 0, fedv1.ReasonBlocklistInvalid, fmt.Sprintf("ConfigMap %q key %q: %v", ref.Name, key, err), nil
	}
	return len(entries), "", fmt.Sprintf("%d hosts imported from ConfigMap %s", len(entries), ref.Name), nil
}

// SetupWithManager watches policies, their target servers and blocklist ConfigMaps.
func (r *FederationPolicyReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("federationpolicy").
		For(&policyT{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&serverT{}, handler.EnqueueRequestsFromMapFunc(enqueueByIndex(r.Client, policyList, indexPolicyTarget, ownName)), builder.WithPredicates(existenceChanged())).
		Watches(&corev1.ConfigMap{}, handler.EnqueueRequestsFromMapFunc(enqueueByIndex(r.Client, policyList, indexPolicyConfigMap, ownName))).
		Complete(r)
}

func policyList() client.ObjectList { return &fedv1.FederationPolicyList{} }
