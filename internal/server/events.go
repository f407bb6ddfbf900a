package server

import (
	"context"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/reference"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
)

// The server's Events tell the story of a Subscription, a FederatedActor and a
// FederationPolicy (`kubectl describe`), and count the same step of a follow exchange in
// fedforge_exchange_activities_total. Events go through client-go's events.k8s.io
// recorder: a repeat of an Event (same object, type, reason, action) within six minutes
// is folded into the first one's series, so a peer that repeats itself costs at most two
// writes per six minutes, plus one refresh every 30 minutes (the reference is made
// without its resourceVersion for that: stableRef). Refusals, which a flood makes
// numerous, are counted in memory and reported once per interval per policy
// (refusals.event).

// event records one Event about obj; nil recorder (unit tests) records nothing. The
// policies' Refused Events (refusals.event) keep the policy's resourceVersion on purpose:
// each report patches the policy's status first, so each report is an Event of its own
// with its own counts (at most one per policy and interval) instead of a series that
// would keep the first report's note.
func (f *federation) event(obj runtime.Object, warning bool, reason, action, note string, args ...any) {
	if f.recorder == nil || obj == nil {
		return
	}
	typ := corev1.EventTypeNormal
	if warning {
		typ = corev1.EventTypeWarning
	}
	f.recorder.Eventf(stableRef(f.kube.Scheme(), obj), nil, typ, reason, action, note, args...)
}

// stableRef is obj's reference without its resourceVersion. The recorder folds repeats
// by the whole reference, version included, and a Subscription's version changes with
// every status write: without this, a Follow flood on a Subscription whose status is
// patched in between would be one Event object per Follow.
func stableRef(scheme *runtime.Scheme, obj runtime.Object) runtime.Object {
	r, err := reference.GetReference(scheme, obj)
	if err != nil {
		return obj
	}
	r.ResourceVersion = ""
	return r
}

// followReceived records a Follow that reached the local actor's Subscription.
func (f *federation) followReceived(sub *fedv1.Subscription, followID string) {
	f.metrics.exchange(exchFollow, dirIn)
	f.event(sub, false, fedv1.EventFollowReceived, fedv1.ActionReceive, "Follow %s received from %s", followID, sub.Spec.RemoteActor)
}

// answered records the Accept or Reject sent to a follower, or the wait for approval.
func (f *federation) answered(sub *fedv1.Subscription, kind, inbox string) {
	switch kind {
	case "Accept":
		f.metrics.exchange(exchAccept, dirOut)
		f.event(sub, false, fedv1.EventAccepted, fedv1.ActionSend, "Accept sent to %s", inbox)
	case "Reject":
		f.metrics.exchange(exchReject, dirOut)
		f.event(sub, false, fedv1.EventRejected, fedv1.ActionSend, "Reject sent to %s: spec.approved is false", inbox)
	default:
		f.event(sub, false, fedv1.EventAwaitingApproval, fedv1.ActionReceive, "the actor approves followers by hand: set spec.approved to true or false")
	}
}

// followRefused records a Follow answered with Reject without a Subscription of its own
// (a refused host, a follower limit): on the follower's Subscription when one exists,
// else on the followed actor, naming the policies that refused.
func (f *federation) followRefused(ctx context.Context, la *localActor, follower, reason string, by []string) {
	if reason == fedv1.ReasonPolicyDenied {
		f.metrics.exchange(exchFollow, dirIn) // it never reached onFollow
	}
	f.metrics.exchange(exchReject, dirOut)
	var obj runtime.Object = la.obj
	var sub fedv1.Subscription
	if err := f.reader.Get(ctx, types.NamespacedName{Namespace: f.srv.Namespace, Name: InboundName(la.obj.Name, follower)}, &sub); err == nil {
		obj = &sub
	}
	who := policyNames(by)
	if reason == refusalMoved {
		who = "the move to " + la.obj.Spec.MovedTo
	}
	f.event(obj, true, fedv1.EventRejected, fedv1.ActionSend, "Follow from %s rejected (%s) by %s", follower, reason, who)
}

// remoteAnswered records the Accept or Reject of an Outbound Subscription's Follow.
func (f *federation) remoteAnswered(sub *fedv1.Subscription, accepted bool) {
	if accepted {
		f.metrics.exchange(exchAccept, dirIn)
		f.event(sub, false, fedv1.EventAccepted, fedv1.ActionReceive, "%s accepted the follow", sub.Status.RemoteActorID)
		return
	}
	f.metrics.exchange(exchReject, dirIn)
	f.event(sub, true, fedv1.EventRejected, fedv1.ActionReceive, "%s rejected the follow", sub.Status.RemoteActorID)
}

// followSent records the first Follow of an Outbound Subscription.
func (f *federation) followSent(sub *fedv1.Subscription, inbox string) {
	f.metrics.exchange(exchFollow, dirOut)
	f.event(sub, false, fedv1.EventFollowSent, fedv1.ActionSend, "Follow sent to %s", inbox)
}

// outboundFailed records why an Outbound Subscription's Follow was not sent.
func (f *federation) outboundFailed(sub *fedv1.Subscription, reason string, err error) {
	if reason == fedv1.ReasonPolicyDenied {
		f.event(sub, true, fedv1.EventRejected, fedv1.ActionSend, "not followed: %v", err)
		return
	}
	f.event(sub, true, fedv1.EventResolveFailed, fedv1.ActionResolve, "%s", truncate(err.Error(), 500))
}

// undone records an Undo{Follow} received from a follower, or the Undo sent when an
// Outbound Subscription is deleted.
func (f *federation) undone(sub *fedv1.Subscription, received bool) {
	if received {
		f.metrics.exchange(exchUndo, dirIn)
		f.event(sub, false, fedv1.EventUndone, fedv1.ActionReceive, "%s undid the follow; the Subscription is deleted", sub.Spec.RemoteActor)
		return
	}
	f.metrics.exchange(exchUndo, dirOut)
	f.event(sub, false, fedv1.EventUndone, fedv1.ActionSend, "Undo of the Follow sent to %s", sub.Status.RemoteInbox)
}

// farewellSent records the Reject sent to a follower whose Subscription was deleted.
func (f *federation) farewellSent(sub *fedv1.Subscription) {
	f.metrics.exchange(exchReject, dirOut)
	f.event(sub, false, fedv1.EventRejected, fedv1.ActionSend, "Reject sent to %s: the Subscription was deleted", sub.Status.RemoteInbox)
}

// reachability records a Subscription's remote host becoming unavailable or coming back.
func (f *federation) reachability(sub *fedv1.Subscription, host string, unavailable bool) {
	if unavailable {
		f.event(sub, true, fedv1.EventHostUnreachable, fedv1.ActionDeliver, "deliveries to %s failed on 7 distinct days; they resume when it is heard from", host)
		return
	}
	f.event(sub, false, fedv1.EventHostReachable, fedv1.ActionDeliver, "%s answers deliveries again", host)
}

// publishEvent records activities queued for an actor's followers, or the failure.
func (f *federation) publishEvent(actor *fedv1.FederatedActor, from string, n, inboxes int, err error) {
	if err != nil {
		f.event(actor, true, fedv1.EventPublishFailed, fedv1.ActionPublish, "Publishing %d activities from %s failed: %v", n, from, err)
		return
	}
	f.event(actor, false, fedv1.EventPublished, fedv1.ActionPublish, "Published %d activities from %s to %d follower inboxes", n, from, inboxes)
}

// event records one Event per policy that refused something since the
// last report, with the counts: the report interval (a minute) is the rate limit, the
// recorder's series the aggregation across intervals.
func (r *refusals) event(pol *fedv1.FederationPolicy, delta *fedv1.RefusedCounts) {
	if r.recorder == nil {
		return
	}
	r.recorder.Eventf(pol, nil, corev1.EventTypeWarning, fedv1.EventRefused, fedv1.ActionRefuse,
		"refused %d requests, %d follows and %d deliveries since the last report (totals in status.refused)",
		delta.Requests, delta.Follows, delta.Deliveries)
}

func policyNames(by []string) string {
	if len(by) == 0 {
		return "a follower limit"
	}
	return "FederationPolicy " + strings.Join(by, ", ")
}
