package server

import (
	"context"
	"net/http"

	"k8s.io/apimachinery/pkg/types"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
)

// onUpdate handles Update of a remote actor: the embedded document (signed by the actor
// itself, which the inbox checked) replaces the cached one, and its keys replace the
// cached keys at once, so a key rotation needs no refetch.
func (f *federation) onUpdate(ctx context.Context, in *inbound) ([]string, error) {
	act := in.act
	actorID := act.Actor.ID()
	doc := act.Object.Object
	if act.Object.ID() != actorID {
		return f.addressees(ctx, act, nil)
	}
	if doc == nil || doc.Inbox == "" {
		// An Update naming the actor by IRI only: refetch it.
		if _, err := f.remoteActor(ctx, actorID, f.actors.anySigner(ctx), true); err != nil {
			return nil, err
		}
		return nil, nil
	}
	if doc.ID != actorID {
		return nil, refuse(http.StatusBadRequest, nil, "Update of actor %s carries the document of %s", actorID, doc.ID)
	}
	if _, err := f.cacheActor(ctx, doc); err != nil {
		return nil, err
	}
	now := f.now()
	for _, k := range doc.PublicKey {
		if k.PublicKeyPem != "" && k.Owner == actorID {
			if err := f.keyStore.PutKey(ctx, &activitypub.StoredKey{KeyID: k.ID, Owner: actorID, PEM: k.PublicKeyPem, FetchedAt: now, ExpiresAt: now.Add(f.keyTTL)}); err != nil {
				return nil, err
			}
		}
	}
	for _, k := range doc.AssertionMethod {
		if k.PublicKeyMultibase != "" && k.Controller == actorID {
			if err := f.keyStore.PutKey(ctx, &activitypub.StoredKey{KeyID: k.ID, Owner: actorID, Multibase: k.PublicKeyMultibase, FetchedAt: now, ExpiresAt: now.Add(f.keyTTL)}); err != nil {
				return nil, err
			}
		}
	}
	// Subscriptions keep the inboxes they resolved; refresh them if the actor moved its
	// inbox (rare, but a server migration does it).
	subs, err := f.subs.ofRemote(ctx, actorID)
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
		if err := f.subs.patchStatus(ctx, types.NamespacedName{Namespace: s.Namespace, Name: s.Name}, func(s *fedv1.Subscription) {
			s.Status.RemoteInbox, s.Status.RemoteSharedInbox = doc.Inbox, shared
		}); err != nil {
			return nil, err
		}
	}
	return nil, nil
}
