package server

import (
	"context"
	"errors"
	"net/http"

	"k8s.io/apimachinery/pkg/types"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
)

// onUpdate handles Update of a remote actor: the embedded document (signed by the actor
// itself, which the inbox checked) replaces the cached one, and its keys replace the
// cached keys at once, so a key rotation needs no refetch; only keys under the actor's
// own document, never one bound to another actor (KeyCache.PutActorKeys).
func (f *federation) onUpdate(ctx context.Context, in *inbound) ([]string, error) {
	act := in.act
	actorID := act.Actor.ID()
	doc := act.Object.Object
	if act.Object.ID() != actorID {
		// An Update of a Note written as a forge comment edits the comment (replies.go).
		if handled, err := f.editTicketComment(ctx, act); err != nil {
			return nil, err
		} else if !handled {
			if err := f.editOfferedComment(ctx, act); err != nil { // merge_request_notes.go
				return nil, err
			}
		}
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
