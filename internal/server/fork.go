package server

import (
	"context"
	"errors"
	"net/http"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/store"
)

// forkedRepository returns the Repository a Create carries when that Repository says it
// was forked from somewhere (ForgeFed origin, or the older forkedFrom), and where from.
// ForgeFed's fork process (spec section "Forks and Migrations") announces a new
// repository with a Create whose object is the Repository with its origin; a Create of
// anything else is a post.
func forkedRepository(act *activitypub.Object) (repo *activitypub.Object, upstream string) {
	repo = act.Object.Object
	if up := upstreamOf(repo); up != "" {
		return repo, up
	}
	return nil, ""
}

// upstreamOf returns what a Repository document says it was forked from: origin, else
// forkedFrom; "" for anything else.
func upstreamOf(repo *activitypub.Object) string {
	if repo == nil || !repo.Type.Has(activitypub.TypeRepository) {
		return ""
	}
	if up := repo.Origin.ID(); up != "" {
		return up
	}
	return repo.ForkedFrom.ID()
}

// onForkNotice handles a fork notice: Create{Repository} whose origin (or forkedFrom) is
// a local Repository actor. It is checked, then the fork is listed in the upstream's
// forks collection. The checks: the fork's id is on the signer's host (a peer can only
// announce forks it hosts), and the fork's own document, fetched from its id, is a
// Repository that names the same upstream (the embedded copy is not trusted alone).
// A notice about an actor that is not ours, or not a Repository, is filed as a post.
func (f *federation) onForkNotice(ctx context.Context, in *inbound, repo *activitypub.Object, upstream string) ([]string, error) {
	la, err := f.actors.byIRI(ctx, upstream)
	if errors.Is(err, errNotLocal) || (err == nil && la.obj.Spec.Type != fedv1.ActorRepository) {
		return f.addressees(ctx, in.act, in.recipient)
	} else if err != nil {
		return nil, err
	}
	forkID := repo.ID
	if forkID == "" || !sameOrigin(forkID, in.act.Actor.ID()) {
		return nil, refuse(http.StatusBadRequest, nil, "fork notice for %s: the fork %q is not on the sender's host", upstream, forkID)
	}
	signer, err := f.actors.signerFor(ctx, la)
	if err != nil {
		return nil, err
	}
	doc, err := f.client.FetchObject(ctx, forkID, signer)
	if err != nil {
		return nil, err // unreachable or refused: the peer retries
	}
	if doc.ID != forkID || upstreamOf(doc) != upstream {
		return nil, refuse(http.StatusUnprocessableEntity, nil, "fork notice for %s: the document at %s (id %q) does not say it was forked from it", upstream, forkID, doc.ID)
	}
	created, err := f.store.RecordFork(ctx, store.Fork{ActorID: la.urls.ID, ForkID: forkID, Via: store.ViaFederation,
		ActivityID: in.act.ID, Created: f.now().UTC()})
	if err != nil {
		return nil, err
	}
	f.log.Info("fork notice recorded", "actor", la.urls.ID, "fork", forkID, "new", created)
	return []string{la.urls.ID}, nil
}
