package server

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/store"
)

// moveRecheck is how long an unconfirmed or unreachable move target waits before it is
// fetched again: the owner adds the alias on the target, and the move goes out within
// this time, while Subscription changes (which requeue the actor) cannot make the server
// fetch the target on each. A change of the actor's spec checks at once.
const moveRecheck = 2 * time.Minute

// refusalMoved is the reason logged and told in the Event when a moved actor answers a
// new Follow with Reject.
const refusalMoved = "Moved"

// errMoveUnconfirmed says the move target does not name the moving actor.
var errMoveUnconfirmed = errors.New("does not name this actor in alsoKnownAs")

// announceMove sends Move{actor: la, object: la, target: spec.movedTo} once to every
// follower, after the target confirmed the move by naming la in its alsoKnownAs (read
// from the informer cache when the target is an actor of this server, else fetched,
// signed, from its own id), and records the outcome in the Moved condition. The Move has
// a deterministic id per target, so the store's record of it is what makes it "sent
// once": a re-run, a restart or another replica finds it and sends nothing. Without
// spec.movedTo the condition is removed.
func (f *federation) announceMove(ctx context.Context, la *localActor) (ctrl.Result, error) {
	a := la.obj
	target := a.Spec.MovedTo
	if target == "" {
		if meta.FindStatusCondition(a.Status.Conditions, fedv1.ConditionMoved) == nil {
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, f.setMoved(ctx, a, nil)
	}
	moveID := activityID(la.urls.ID, "Move", target)
	if _, err := f.store.GetActivity(ctx, moveID); err == nil {
		return ctrl.Result{}, f.setMoved(ctx, a, &metav1.Condition{Status: metav1.ConditionTrue, Reason: fedv1.ReasonMoveSent,
			Message: "Move to " + target + " sent to the followers"})
	} else if !errors.Is(err, store.ErrNotFound) {
		return ctrl.Result{}, err
	}
	if target == la.urls.ID {
		return ctrl.Result{}, f.refuseMove(ctx, a, fedv1.ReasonMoveTargetInvalid, "spec.movedTo is this actor's own id")
	}
	if wait := f.moveChecks.wait(a.UID, target, a.Generation, f.now()); wait > 0 {
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	if err := f.confirmMove(ctx, la, target); err != nil {
		reason := fedv1.ReasonMoveTargetUnreachable
		if errors.Is(err, errMoveUnconfirmed) {
			reason = fedv1.ReasonMoveTargetUnconfirmed
		}
		f.moveChecks.checked(a.UID, target, a.Generation, f.now().Add(moveRecheck))
		msg := fmt.Sprintf("no Move sent: %s %v; checked again in %s", target, err, moveRecheck)
		return ctrl.Result{RequeueAfter: moveRecheck}, f.refuseMove(ctx, a, reason, truncate(msg, 1000))
	}
	followers, err := f.followers(ctx, la)
	if err != nil {
		return ctrl.Result{}, err
	}
	move := activitypub.NewActivity("Move", moveID, la.urls.ID, activitypub.IRIRef(la.urls.ID), activitypub.IRIRefs(la.urls.Followers()), nil)
	move.Target = activitypub.IRIRef(target)
	if err := f.publish(ctx, la, move, store.Direct, followers); err != nil {
		return ctrl.Result{}, err
	}
	f.moveChecks.forget(a.UID)
	f.log.Info("actor moved", "actor", a.Name, "target", target, "followers", len(followers))
	f.event(a, false, fedv1.EventMoved, fedv1.ActionSend, "Move to %s queued for %d follower inboxes", target, len(followers))
	return ctrl.Result{}, f.setMoved(ctx, a, &metav1.Condition{Status: metav1.ConditionTrue, Reason: fedv1.ReasonMoveSent,
		Message: "Move to " + target + " sent to the followers"})
}

// confirmMove checks that the actor at target names la in its alsoKnownAs.
func (f *federation) confirmMove(ctx context.Context, la *localActor, target string) error {
	if local, err := f.actors.byIRI(ctx, target); err == nil {
		for _, aka := range local.obj.Spec.AlsoKnownAs {
			if aka == la.urls.ID {
				return nil
			}
		}
		return fmt.Errorf("(an actor of this server, FederatedActor %s) %w", local.obj.Name, errMoveUnconfirmed)
	} else if !errors.Is(err, errNotLocal) {
		return err
	}
	signer, err := f.actors.signerFor(ctx, la)
	if err != nil {
		return err
	}
	doc, err := f.client.FetchObject(ctx, target, signer)
	if err != nil {
		return fmt.Errorf("could not be fetched: %w", err)
	}
	if doc.ID != target || doc.Inbox == "" {
		return fmt.Errorf("is not an actor document (id %q, type %v)", doc.ID, doc.Type)
	}
	if !doc.AlsoKnownAs.Contains(la.urls.ID) {
		return errMoveUnconfirmed
	}
	_, err = f.cacheActor(ctx, doc)
	return err
}

// refuseMove records why no Move was sent: the Moved condition False, and a Warning
// Event when the reason changes.
func (f *federation) refuseMove(ctx context.Context, a *fedv1.FederatedActor, reason, msg string) error {
	if c := meta.FindStatusCondition(a.Status.Conditions, fedv1.ConditionMoved); c == nil || c.Reason != reason {
		f.log.Info("move not sent", "actor", a.Name, "target", a.Spec.MovedTo, "reason", reason, "message", msg)
		f.event(a, true, fedv1.EventMoveRefused, fedv1.ActionValidate, "%s", msg)
	}
	return f.setMoved(ctx, a, &metav1.Condition{Status: metav1.ConditionFalse, Reason: reason, Message: msg})
}

// setMoved writes the Moved condition (nil removes it) into the live status, when it
// changes.
func (f *federation) setMoved(ctx context.Context, a *fedv1.FederatedActor, c *metav1.Condition) error {
	if c != nil {
		c.Type, c.ObservedGeneration = fedv1.ConditionMoved, a.Generation
		if old := meta.FindStatusCondition(a.Status.Conditions, fedv1.ConditionMoved); old != nil && old.Status == c.Status &&
			old.Reason == c.Reason && old.Message == c.Message && old.ObservedGeneration == c.ObservedGeneration {
			return nil
		}
	}
	return client.IgnoreNotFound(patchLiveStatus(ctx, f.subs.writer, types.NamespacedName{Namespace: a.Namespace, Name: a.Name},
		func(live *fedv1.FederatedActor) bool {
			if c == nil {
				return meta.RemoveStatusCondition(&live.Status.Conditions, fedv1.ConditionMoved)
			}
			return meta.SetStatusCondition(&live.Status.Conditions, *c)
		}))
}

// moveThrottle remembers, per actor, when its move target may be fetched again. The zero
// value is ready to use.
type moveThrottle struct {
	mu   sync.Mutex
	next map[types.UID]moveCheck
}

type moveCheck struct {
	target     string
	generation int64
	at         time.Time
}

// wait is how long the actor must wait before checking target again (0: check now). A
// change of the actor's spec (its generation) checks at once.
func (m *moveThrottle) wait(uid types.UID, target string, generation int64, now time.Time) time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.next[uid]
	if !ok || c.target != target || c.generation != generation || !now.Before(c.at) {
		return 0
	}
	return c.at.Sub(now)
}

func (m *moveThrottle) checked(uid types.UID, target string, generation int64, next time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.next == nil {
		m.next = map[types.UID]moveCheck{}
	}
	m.next[uid] = moveCheck{target: target, generation: generation, at: next}
}

func (m *moveThrottle) forget(uid types.UID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.next, uid)
}
