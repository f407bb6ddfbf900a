package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
)

// onDelete handles Delete of a remote actor (actor == object): its Subscriptions in
// both directions are removed, quietly, and its cached document and keys forgotten.
// Deletes of objects need no state here; they are kept in the received log.
func (f *federation) onDelete(ctx context.Context, act *activitypub.Object) ([]string, error) {
	actorID := act.Actor.ID()
	if act.Object.ID() != actorID {
		return f.onOther(ctx, act, nil)
	}
	out, err := f.removeRemote(ctx, actorID)
	if err != nil {
		return nil, err
	}
	if err := f.store.DeleteRemoteActor(ctx, actorID); err != nil {
		return nil, err
	}
	return out, nil
}

// removeRemote deletes every Subscription naming a remote actor and returns the local
// actors concerned.
func (f *federation) removeRemote(ctx context.Context, actorID string) ([]string, error) {
	subs, err := f.subscriptionsOfRemote(ctx, actorID)
	if err != nil {
		return nil, err
	}
	var out []string
	for i := range subs {
		if la, err := f.localActorByObject(ctx, subs[i].Spec.ActorRef.Name); err == nil {
			out = append(out, la.urls.ID)
		}
		if err := f.deleteQuietly(ctx, &subs[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// onUpdate handles Update of a remote actor: the embedded document (signed by the actor
// itself, which the inbox checked) replaces the cached one, and its keys replace the
// cached keys at once, so a key rotation needs no refetch; only keys under the actor's
// own document, never one bound to another actor (KeyCache.PutActorKeys).
func (f *federation) onUpdate(ctx context.Context, act *activitypub.Object) ([]string, error) {
	actorID := act.Actor.ID()
	doc := act.Object.Object
	if act.Object.ID() != actorID {
		return f.onOther(ctx, act, nil)
	}
	if doc == nil || doc.Inbox == "" {
		// An Update naming the actor by IRI only: refetch it.
		if _, err := f.remoteActor(ctx, actorID, f.anySigner(ctx), true); err != nil {
			return nil, err
		}
		return nil, nil
	}
	if doc.ID != actorID {
		return nil, refuse(http.StatusBadRequest, nil, "Update of actor %s carries the document of %s", actorID, doc.ID)
	}
	// The keys first: a document stating a key outside its own document, or one bound to
	// another actor, is refused whole (docs/decisions.md, key provenance).
	if _, err := f.keyCache.PutActorKeys(ctx, doc); err != nil {
		var perr *activitypub.Error
		if errors.As(err, &perr) {
			return nil, refuse(http.StatusBadRequest, err, "Update of actor %s", actorID)
		}
		return nil, err
	}
	if _, err := f.cacheActor(ctx, doc); err != nil {
		return nil, err
	}
	// Subscriptions keep the inboxes they resolved; refresh them if the actor moved its
	// inbox (rare, but a server migration does it).
	subs, err := f.subscriptionsOfRemote(ctx, actorID)
	if err != nil {
		return nil, err
	}
	shared := ""
	if doc.Endpoints != nil {
		shared = doc.Endpoints.SharedInbox
	}
	for i := range subs {
		s := &subs[i]
		if s.Status.RemoteInbox == doc.Inbox && s.Status.RemoteSharedInbox == shared {
			continue
		}
		if err := f.patchSubscriptionStatus(ctx, types.NamespacedName{Namespace: s.Namespace, Name: s.Name}, func(s *fedv1.Subscription) {
			s.Status.RemoteInbox, s.Status.RemoteSharedInbox = doc.Inbox, shared
		}); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// onMove handles Move{actor: old, object: old, target: new}: when the new account names
// the old one in alsoKnownAs (fetched fresh from the new account's host, never taken
// from the Move itself), every local actor that followed the old account follows the
// new one instead, as Mastodon migrates followers.
func (f *federation) onMove(ctx context.Context, act *activitypub.Object) ([]string, error) {
	oldID := act.Actor.ID()
	if act.Object.ID() != oldID {
		return nil, refuse(http.StatusBadRequest, nil, "Move of %s by %s: only an actor can move itself", act.Object.ID(), oldID)
	}
	newID := act.Target.ID()
	if newID == "" || newID == oldID {
		return nil, refuse(http.StatusBadRequest, nil, "Move without a new target")
	}
	doc, err := f.client.FetchObject(ctx, newID, f.anySigner(ctx))
	if err != nil {
		return nil, err
	}
	if doc.ID != newID {
		return nil, refuse(http.StatusBadRequest, nil, "Move target %s serves the document of %s", newID, doc.ID)
	}
	if !doc.AlsoKnownAs.Contains(oldID) {
		return nil, refuse(http.StatusBadRequest, nil, "Move target %s does not name %s in alsoKnownAs", newID, oldID)
	}
	if _, err := f.cacheActor(ctx, doc); err != nil {
		return nil, err
	}
	subs, err := f.subscriptionsOfRemote(ctx, oldID)
	if err != nil {
		return nil, err
	}
	var out []string
	for i := range subs {
		s := &subs[i]
		if s.Spec.Direction != fedv1.DirectionOutbound {
			continue
		}
		la, err := f.localActorByObject(ctx, s.Spec.ActorRef.Name)
		if err != nil {
			continue
		}
		out = append(out, la.urls.ID)
		moved := &fedv1.Subscription{
			ObjectMeta: metav1.ObjectMeta{Namespace: s.Namespace, Name: subscriptionName(la.obj.Name, "out", newID), Labels: s.Labels,
				Annotations: map[string]string{"federation.fedforge.dev/moved-from": oldID}},
			Spec: fedv1.SubscriptionSpec{Direction: fedv1.DirectionOutbound, ActorRef: s.Spec.ActorRef, RemoteActor: newID},
		}
		if err := f.kube.Create(ctx, moved); err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("following %s, the new account of %s: %w", newID, oldID, err)
		}
		if err := f.deleteQuietly(ctx, s); err != nil {
			return nil, err
		}
	}
	return out, nil
}
