package server

import (
	"context"
	"errors"
	"net/http"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/store"
)

// onLike handles Like. A Like of a local Repository actor is a ForgeFed star (Forgejo
// federates stars that way): it is counted in the actor's likes collection, once per
// liker, and never written into the forge (a peer's star is not the forge's to show,
// and the forge token is not for traffic from the Fediverse). Any other Like (a
// Mastodon favourite of one of our posts, a Like of another actor) is filed for the
// local actors it concerns, as before.
func (f *federation) onLike(ctx context.Context, in *inbound) ([]string, error) {
	la, err := f.likedRepository(ctx, in.act)
	if err != nil || la == nil {
		if err != nil {
			return nil, err
		}
		return f.addressees(ctx, in.act, in.recipient)
	}
	liker := in.act.Actor.ID()
	if err := f.checkPerson(ctx, la, liker); err != nil {
		return nil, err
	}
	created, err := f.store.RecordLike(ctx, store.Like{ActorID: la.urls.ID, LikerID: liker, LikeID: in.act.ID,
		Via: store.ViaFederation, Created: f.now().UTC()})
	if err != nil {
		return nil, err
	}
	f.log.V(1).Info("repository liked", "actor", la.urls.ID, "liker", liker, "counted", created)
	return []string{la.urls.ID}, nil
}

// likedRepository returns the local Repository actor a Like names as its object, or
// nil when the object is anything else.
func (f *federation) likedRepository(ctx context.Context, like *activitypub.Object) (*localActor, error) {
	la, err := f.actors.byIRI(ctx, like.Object.ID())
	switch {
	case errors.Is(err, errNotLocal):
		return nil, nil
	case err != nil:
		return nil, err
	case la.obj.Spec.Type != fedv1.ActorRepository:
		return nil, nil
	}
	return la, nil
}

// checkPerson refuses a star from an actor that is not a Person, as ForgeFed asks
// ("Verify actor is a Person"): a Service or an Application starring a repository is
// how a bot server would inflate a count. The liker's document is the one the
// signature was checked against (cached), or is fetched signed by the liked actor.
func (f *federation) checkPerson(ctx context.Context, la *localActor, liker string) error {
	signer, err := f.actors.signerFor(ctx, la)
	if err != nil {
		return err
	}
	ra, err := f.remoteActor(ctx, liker, signer, false)
	if err != nil {
		return err
	}
	doc, err := activitypub.DecodeObject(ra.Raw)
	if err != nil {
		return refuse(http.StatusUnprocessableEntity, err, "the document of %s cannot be read", liker)
	}
	if !doc.Type.Has(activitypub.TypePerson) {
		return refuse(http.StatusUnprocessableEntity, nil, "Like of %s by %s, a %v: only a Person stars a repository (ForgeFed)", la.urls.ID, liker, []string(doc.Type))
	}
	return nil
}

// undoLike handles Undo{Like} of a local Repository actor: the liker's star is removed
// (a star given in the forge stays: only the forge takes it back). The Like may be
// embedded or named by id. handled is false when the Undo is not of such a Like, so
// that onUndo goes on with its other cases.
func (f *federation) undoLike(ctx context.Context, in *inbound) (out []string, handled bool, err error) {
	undoer := in.act.Actor.ID()
	inner := in.act.Object.Object
	var la *localActor
	switch {
	case inner != nil && len(inner.Type) > 0 && !inner.Type.Has(activitypub.TypeLike):
		return nil, false, nil
	case inner != nil && len(inner.Type) > 0:
		if inner.Actor.ID() != "" && inner.Actor.ID() != undoer {
			return nil, true, refuse(http.StatusForbidden, nil, "Undo of a Like by another actor")
		}
		if la, err = f.likedRepository(ctx, inner); err != nil || la == nil {
			return nil, true, err // an Undo of a Like of a post: nothing to change
		}
	default: // the Like named by its id (or embedded without a type)
		l, err := f.store.GetLike(ctx, in.act.Object.ID())
		if errors.Is(err, store.ErrNotFound) {
			return nil, false, nil
		} else if err != nil {
			return nil, true, err
		}
		if l.LikerID != undoer {
			return nil, true, refuse(http.StatusForbidden, nil, "Undo of a Like by another actor")
		}
		if la, err = f.actors.byIRI(ctx, l.ActorID); errors.Is(err, errNotLocal) {
			_, err = f.store.RemoveLike(ctx, l.ActorID, undoer, store.ViaFederation)
			return nil, true, err // the actor is gone: forget its star all the same
		} else if err != nil {
			return nil, true, err
		}
	}
	removed, err := f.store.RemoveLike(ctx, la.urls.ID, undoer, store.ViaFederation)
	if err != nil {
		return nil, true, err
	}
	f.log.V(1).Info("repository like undone", "actor", la.urls.ID, "liker", undoer, "removed", removed)
	return []string{la.urls.ID}, true, nil
}
