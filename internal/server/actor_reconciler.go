package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/delivery"
	"github.com/fedforge/fedforge/internal/store"
)

// farewellWait bounds how long a deleted actor waits for its Delete to reach its
// followers before its finalizer is removed (and its keys with it).
const farewellWait = 10 * time.Minute

// actorExchange publishes what followers must learn about a local actor: an Update when
// its document changes (profile or key rotation), and a Delete when it is deleted, held
// by a finalizer until the Delete has gone out.
type actorExchange struct{ f *federation }

// Reconcile implements reconcile.Reconciler.
func (e *actorExchange) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return quietConflict(e.reconcile(ctx, req))
}

func (e *actorExchange) reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	f := e.f
	var a fedv1.FederatedActor
	if err := f.reader.Get(ctx, req.NamespacedName, &a); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if a.Spec.ServerRef.Name != f.srv.Name {
		return ctrl.Result{}, nil
	}
	base, fs, err := f.actors.baseURL(ctx)
	if errors.Is(err, errNoServer) {
		return ctrl.Result{}, nil
	} else if err != nil {
		return ctrl.Result{}, err
	}
	la := &localActor{obj: &a, urls: urlsFor(base, &a)}
	if !a.DeletionTimestamp.IsZero() {
		if !controllerutil.ContainsFinalizer(&a, FinalizerExchange) {
			return ctrl.Result{}, nil
		}
		wait, err := f.sayGoodbye(ctx, la)
		if err != nil {
			return ctrl.Result{}, err
		}
		if wait > 0 && time.Since(a.DeletionTimestamp.Time) < farewellWait {
			return ctrl.Result{RequeueAfter: wait}, nil
		}
		return ctrl.Result{}, f.subs.removeFinalizer(ctx, &a)
	}
	if !controllerutil.ContainsFinalizer(&a, FinalizerExchange) {
		patch := client.MergeFrom(a.DeepCopy())
		controllerutil.AddFinalizer(&a, FinalizerExchange)
		return ctrl.Result{}, f.kube.Patch(ctx, &a, patch)
	}
	doc, err := f.docs.actorDocument(ctx, fs, &a)
	if errors.Is(err, errNoKeys) {
		return ctrl.Result{}, nil // the key Secret's arrival requeues us
	} else if err != nil {
		return ctrl.Result{}, err
	}
	if err := f.announceFork(ctx, la); err != nil { // fork_notice.go (issue 14)
		return ctrl.Result{}, err
	}
	// The Update first: followers learn movedTo from the document before the Move
	// (move_local.go), as Mastodon sends them.
	if err := f.announceDocument(ctx, la, doc); err != nil {
		return ctrl.Result{}, err
	}
	return f.announceMove(ctx, la)
}

// announceDocument sends Update{actor} to the followers once per version of the
// document (the Update's id is made from the document's hash).
func (f *federation) announceDocument(ctx context.Context, la *localActor, doc *activitypub.Object) error {
	raw, err := doc.MarshalJSON()
	if err != nil {
		return err
	}
	sum := sha256.Sum256(raw)
	updID := activityID(la.urls.ID, "Update", hex.EncodeToString(sum[:]))
	// Every Subscription change requeues the actor: when this document was announced
	// already, stop before listing the followers (one store read, not a fan-out's work).
	if _, err := f.store.GetActivity(ctx, updID); err == nil {
		return nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	followers, err := f.followers(ctx, la)
	if err != nil {
		return err
	}
	doc.Context = nil
	upd := activitypub.NewActivity("Update", updID, la.urls.ID, activitypub.ObjectRef(doc), activitypub.IRIRefs(activitypub.PublicIRI), activitypub.IRIRefs(la.urls.Followers()))
	if len(followers) == 0 {
		// Nobody to tell. The Update is recorded all the same (sent to no one), so that
		// the next follower, who reads this document when following, is not sent it.
		return f.publishAs(ctx, la, la.urls.ID, upd, store.Direct, nil)
	}
	// Announcing rotated keys: sign with the previous key while it lasts, so followers
	// that cached it verify the Update and learn the new key from it.
	signAs := la.urls.ID
	if _, err := f.actors.previousSigner(ctx, la); err == nil {
		signAs += previousKeySuffix
	}
	return f.publishAs(ctx, la, signAs, upd, store.Direct, followers)
}

// sayGoodbye sends Delete{actor} to every follower, removes the actor's Subscriptions
// without further exchanges, and reports how long to wait for the Delete to go out.
func (f *federation) sayGoodbye(ctx context.Context, la *localActor) (time.Duration, error) {
	followers, err := f.followers(ctx, la)
	if err != nil {
		return 0, err
	}
	del := activitypub.NewActivity("Delete", la.urls.ID+"#delete", la.urls.ID, activitypub.IRIRef(la.urls.ID), activitypub.IRIRefs(activitypub.PublicIRI), nil)
	if len(followers) > 0 {
		if _, err := f.actors.signerFor(ctx, la); err != nil {
			f.log.Info("actor deleted without keys: its followers cannot be told", "actor", la.obj.Name)
		} else if err := f.publish(ctx, la, del, store.Direct, followers); err != nil {
			return 0, err
		}
	}
	subs, err := f.subs.list(ctx, indexSubActor, la.obj.Name)
	if err != nil {
		return 0, err
	}
	for i := range subs {
		if err := f.subs.deleteQuietly(ctx, &subs[i]); err != nil {
			return 0, err
		}
	}
	// Re-runs find no followers (their Subscriptions are gone) but still wait for the
	// Delete queued by the first run.
	n, err := f.store.PendingDeliveries(ctx, del.ID)
	if err != nil || n == 0 {
		return 0, err
	}
	return 5 * time.Second, nil
}

// followers returns the inboxes of an actor's accepted followers.
func (f *federation) followers(ctx context.Context, la *localActor) ([]Recipient, error) {
	subs, err := f.subs.list(ctx, indexSubActor, la.obj.Name)
	if err != nil {
		return nil, err
	}
	// Policies apply to outbound exchanges too: a follower on a host refused since it
	// followed gets nothing more (the refusal is counted as a delivery). They are loaded
	// once per fan-out and evaluated once per host.
	cs, err := f.policies.load(ctx)
	if err != nil {
		return nil, err
	}
	verdicts := map[string]verdict{}
	var out []Recipient
	for _, s := range subs {
		if s.Spec.Direction != fedv1.DirectionInbound || s.Status.Phase != fedv1.PhaseAccepted || s.Status.RemoteInbox == "" {
			continue
		}
		host := delivery.HostOf(s.Status.RemoteInbox)
		v, seen := verdicts[host]
		if !seen {
			v = verdictFor(cs, host)
			verdicts[host] = v
		}
		if !v.allowed {
			f.refused.add(refusedDelivery, f.now(), v.by...)
			continue
		}
		out = append(out, Recipient{Inbox: s.Status.RemoteInbox, SharedInbox: s.Status.RemoteSharedInbox})
	}
	return out, nil
}
