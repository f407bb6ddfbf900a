package server

import (
	"errors"
	"fmt"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	ctrl "sigs.k8s.io/controller-runtime"
)

// TestQuietConflict: an optimistic-lock conflict, also wrapped, requeues without an
// error (which controller-runtime would log at error level); other errors stay errors.
func TestQuietConflict(t *testing.T) {
	conflict := apierrors.NewConflict(schema.GroupResource{Group: "federation.fedforge.dev", Resource: "subscriptions"}, "s", errors.New("the object has been modified"))
	tests := map[string]struct {
		err     error
		wantErr bool
		requeue bool
	}{
		"conflict":         {err: conflict, requeue: true},
		"wrapped conflict": {err: fmt.Errorf("removing finalizer: %w", conflict), requeue: true},
		"other error":      {err: errors.New("boom"), wantErr: true},
		"success":          {},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			res, err := quietConflict(ctrl.Result{}, tc.err)
			if (err != nil) != tc.wantErr || (res.RequeueAfter == conflictRequeue) != tc.requeue {
				t.Fatalf("got %+v, %v", res, err)
			}
		})
	}
}
