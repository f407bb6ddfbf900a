package server

import (
	"context"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
)

// writer writes the objects the server changes (Subscriptions, status, finalizers):
// live reads for read-modify-write, and the client that writes.
type writer struct {
	api  client.Reader // live reads, never the cache
	kube client.Client
}

// removeFinalizer removes the exchange finalizer with an optimistic lock.
func (w writer) removeFinalizer(ctx context.Context, o client.Object) error {
	patch := client.MergeFromWithOptions(o.DeepCopyObject().(client.Object), client.MergeFromWithOptimisticLock{})
	if controllerutil.RemoveFinalizer(o, FinalizerExchange) {
		return client.IgnoreNotFound(w.kube.Patch(ctx, o, patch))
	}
	return nil
}

// truncate bounds a condition message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// patchLiveStatus reads the object at key live, lets change edit it (false: nothing to
// write) and patches its status with an optimistic lock, reading again after a conflict
// (at most 5 retries). The server writes the status of objects the operator writes too,
// so it never patches from a cached copy.
func patchLiveStatus[T any, PT interface {
	*T
	client.Object
}](ctx context.Context, w writer, key types.NamespacedName, change func(PT) bool) error {
	for attempt := 0; ; attempt++ {
		obj := PT(new(T))
		if err := w.api.Get(ctx, key, obj); err != nil {
			return err
		}
		base := obj.DeepCopyObject().(client.Object)
		if !change(obj) {
			return nil
		}
		err := w.kube.Status().Patch(ctx, obj, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
		if err == nil || !apierrors.IsConflict(err) || attempt >= 5 {
			return err
		}
	}
}
