package controllers

import (
	"context"
	"errors"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kerrors "k8s.io/apimachinery/pkg/util/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
)

// reasonError carries the condition reason of a failed step up to the deferred status
// patch, so that the step that knows what failed (an apply, a create) names it and the
// reconciler's single exit point writes it.
type reasonError struct {
	reason string
	err    error
}

func (e *reasonError) Error() string { return e.err.Error() }
func (e *reasonError) Unwrap() error { return e.err }

// withReason tags err with a condition reason (fedv1.ReasonApplyFailed, ...); nil stays nil.
func withReason(reason string, err error) error {
	if err == nil {
		return nil
	}
	return &reasonError{reason: reason, err: err}
}

// failureReason is the reason err was tagged with, or fedv1.ReasonReconcileFailed.
func failureReason(err error) string {
	var re *reasonError
	if errors.As(err, &re) {
		return re.reason
	}
	return fedv1.ReasonReconcileFailed
}

// maxConditionMessage bounds a condition message made from an error: the API allows 32 KiB,
// but a wall of text helps nobody in `kubectl describe`.
const maxConditionMessage = 1000

// setFailed sets each condition type in types False with err's reason and message.
func setFailed(conds *[]metav1.Condition, gen int64, err error, types ...string) {
	msg := err.Error()
	if len(msg) > maxConditionMessage {
		msg = msg[:maxConditionMessage-3] + "..."
	}
	for _, t := range types {
		meta.SetStatusCondition(conds, metav1.Condition{Type: t, Status: metav1.ConditionFalse,
			Reason: failureReason(err), Message: msg, ObservedGeneration: gen})
	}
}

// statusOnExit is a reconciler's deferred status write, in the manner of Cluster API's
// patch helper: called as
//
//	defer func() { res, err = statusOnExit(ctx, c, obj, base, res, err, func() { setFailed(...) }) }()
//
// it runs onError when the reconcile failed (so the conditions it owns turn False with the
// reason and message of the error instead of staying stale), then patches the status when
// it differs from base. The reconcile's error wins over the patch's outcome; a status
// write lost to another controller asks for a prompt requeue (see patchStatus).
func statusOnExit(ctx context.Context, c client.Client, obj, base client.Object, res ctrl.Result, err error, onError func()) (ctrl.Result, error) {
	if err != nil && onError != nil {
		onError()
	}
	if equality.Semantic.DeepEqual(obj, base) { // only status is changed between Get and here
		return res, err
	}
	pres, perr := patchStatus(ctx, c, obj, base)
	if err != nil {
		if perr != nil {
			return res, kerrors.NewAggregate([]error{err, perr})
		}
		return res, err
	}
	if perr != nil {
		return res, perr
	}
	if pres.RequeueAfter > 0 && (res.RequeueAfter == 0 || pres.RequeueAfter < res.RequeueAfter) {
		res.RequeueAfter = pres.RequeueAfter
	}
	return res, nil
}
