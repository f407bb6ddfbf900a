package controllers

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
)

// warnOnChange records a Warning Event when a condition turns False with a new reason,
// so that `kubectl describe` shows when a reference broke, once per change and not once
// per reconcile. A nil recorder records nothing. Repeats within six minutes are folded
// into one Event's series by the recorder (api/v1alpha1/events.go).
func warnOnChange(rec events.EventRecorder, obj runtime.Object, before []metav1.Condition, now metav1.Condition, reason, action string) {
	if rec == nil || now.Status != metav1.ConditionFalse || now.Reason != reason {
		return
	}
	if prev := meta.FindStatusCondition(before, now.Type); prev != nil && prev.Status == now.Status && prev.Reason == now.Reason {
		return
	}
	rec.Eventf(obj, nil, corev1.EventTypeWarning, reason, action, "%s", now.Message)
}
