// Package controllers holds the reconcilers of the Fedforge operator, one per concern as
// cert-manager splits a certificate's life: keys, actors, servers, subscriptions, policies.
package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"

	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
)

// FieldOwner is the server-side apply field manager of the operator.
const FieldOwner = client.FieldOwner("fedforge-manager")

// Field indexes registered by SetupIndexes.
const (
	indexActorServer       = "spec.serverRef.name"
	indexSubscriptionActor = "spec.actorRef.name"
	indexPolicyTarget      = "spec.targetRef.name"
	indexPolicyConfigMap   = "spec.blocklistRef.name"
)

var nonDNSLabel = regexp.MustCompile(`[^a-z0-9-]`)

// childName makes a deterministic DNS-1035 label (at most 63 characters) from an owner's
// name and a suffix, shortening with a hash when needed, so that children are found again
// by name after a restart and never collide.
func childName(owner, suffix string) string {
	base := nonDNSLabel.ReplaceAllString(strings.ToLower(owner), "-")
	if base == "" || base[0] < 'a' || base[0] > 'z' {
		base = "f" + base
	}
	name := base + "-" + suffix
	if len(name) <= 63 && name == owner+"-"+suffix {
		return name
	}
	sum := sha256.Sum256([]byte(owner))
	h := hex.EncodeToString(sum[:])[:8]
	keep := 63 - len(suffix) - len(h) - 2
	if len(base) > keep {
		base = strings.TrimRight(base[:keep], "-")
	}
	return base + "-" + h + "-" + suffix
}

// applyObject writes obj with server-side apply as the operator's field manager, so that
// fields other actors own (HPA replicas, annotations of other tools) survive.
func applyObject(ctx context.Context, c client.Client, obj client.Object) error {
	gvk, err := apiutil.GVKForObject(obj, c.Scheme())
	if err != nil {
		return err
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return err
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetGroupVersionKind(gvk)
	unstructured.RemoveNestedField(u.Object, "status")
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), FieldOwner, client.ForceOwnership); err != nil {
		return fmt.Errorf("applying %s %s/%s: %w", gvk.Kind, obj.GetNamespace(), obj.GetName(), err)
	}
	return nil
}

// patchStatus writes obj's status as a merge patch against base with an optimistic lock:
// several small controllers write parts of one status, and a stale write must fail and be
// retried rather than drop another controller's condition. A conflict is the expected
// outcome of that race, so it asks for a prompt requeue instead of logging an error.
func patchStatus(ctx context.Context, c client.Client, obj, base client.Object) (ctrl.Result, error) {
	err := c.Status().Patch(ctx, obj, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
	if apierrors.IsConflict(err) {
		return ctrl.Result{RequeueAfter: conflictRequeue}, nil
	}
	return ctrl.Result{}, err
}

// conflictRequeue is how soon a reconcile that lost a status race runs again.
const conflictRequeue = 200 * time.Millisecond

// SetupIndexes registers the field indexes the reconcilers list by.
func SetupIndexes(ctx context.Context, idx client.FieldIndexer) error {
	if err := idx.IndexField(ctx, &actorT{}, indexActorServer, func(o client.Object) []string {
		return []string{o.(*actorT).Spec.ServerRef.Name}
	}); err != nil {
		return err
	}
	if err := idx.IndexField(ctx, &subscriptionT{}, indexSubscriptionActor, func(o client.Object) []string {
		return []string{o.(*subscriptionT).Spec.ActorRef.Name}
	}); err != nil {
		return err
	}
	if err := idx.IndexField(ctx, &policyT{}, indexPolicyTarget, func(o client.Object) []string {
		return []string{o.(*policyT).Spec.TargetRef.Name}
	}); err != nil {
		return err
	}
	return idx.IndexField(ctx, &policyT{}, indexPolicyConfigMap, func(o client.Object) []string {
		if ref := o.(*policyT).Spec.BlocklistRef; ref != nil {
			return []string{ref.Name}
		}
		return nil
	})
}

// enqueueByIndex maps an object to the requests of every object of list's kind whose field
// index equals key(o), in o's namespace: the one shape all Watches map functions here share.
func enqueueByIndex(c client.Reader, newList func() client.ObjectList, index string, key func(client.Object) string) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		list := newList()
		if err := c.List(ctx, list, client.InNamespace(o.GetNamespace()), client.MatchingFields{index: key(o)}); err != nil {
			return nil
		}
		items, err := meta.ExtractList(list)
		if err != nil {
			return nil
		}
		out := make([]reconcile.Request, 0, len(items))
		for _, it := range items {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(it.(client.Object))})
		}
		return out
	}
}

func ownName(o client.Object) string { return o.GetName() }

// orphanTimeout is how long the manager lets a server hold a deleted object's exchange
// finalizer before it concludes the server cannot act (not running, no keys) and
// releases it, so that deletion never hangs forever.
const orphanTimeout = 15 * time.Minute

// releaseExchange removes the exchange finalizer of a deleted object when no server can
// act on it: its FederationServer (serverName, "" when unknown) is gone or being deleted,
// or the finalizer has been held for orphanTimeout. Otherwise it asks to be called again
// when the timeout ends.
func releaseExchange(ctx context.Context, c client.Client, o client.Object, serverName string, now time.Time) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(o, fedv1.FinalizerExchange) {
		return ctrl.Result{}, nil
	}
	release := serverName == ""
	if !release {
		var srv fedv1.FederationServer
		err := c.Get(ctx, types.NamespacedName{Namespace: o.GetNamespace(), Name: serverName}, &srv)
		switch {
		case apierrors.IsNotFound(err):
			release = true
		case err != nil:
			return ctrl.Result{}, err
		case !srv.DeletionTimestamp.IsZero():
			release = true
		}
	}
	held := now.Sub(o.GetDeletionTimestamp().Time)
	if !release && held < orphanTimeout {
		return ctrl.Result{RequeueAfter: orphanTimeout - held}, nil
	}
	patch := client.MergeFrom(o.DeepCopyObject().(client.Object))
	controllerutil.RemoveFinalizer(o, fedv1.FinalizerExchange)
	return ctrl.Result{}, client.IgnoreNotFound(c.Patch(ctx, o, patch))
}
