package server

import (
	"context"
	"fmt"
	"time"

	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/lookup"
	"github.com/fedforge/fedforge/internal/store"
)

// remoteActor resolves a remote actor's document: from the store when cached and
// fresh, else fetched (signed by the local actor, for authorized-fetch peers) and
// cached for a day.
func (f *federation) remoteActor(ctx context.Context, id string, signer *activitypub.Signer, refresh bool) (*store.RemoteActor, error) {
	now := f.now()
	if !refresh {
		if ra, err := f.store.GetRemoteActor(ctx, id); err == nil && now.Before(ra.ExpiresAt) && !ra.Negative {
			return &ra, nil
		}
	}
	doc, err := f.client.FetchObject(ctx, id, signer)
	if err != nil {
		return nil, err
	}
	if doc.ID != id {
		return nil, fmt.Errorf("%w: actor document at %s has id %q", activitypub.ErrWrongOwner, id, doc.ID)
	}
	if err := lookup.RequireActor(doc); err != nil {
		return nil, err
	}
	return f.cacheActor(ctx, doc)
}

// cacheActor stores a verified remote actor document in the store.
func (f *federation) cacheActor(ctx context.Context, doc *activitypub.Object) (*store.RemoteActor, error) {
	if doc.Inbox == "" {
		return nil, fmt.Errorf("%w: actor %s has no inbox", activitypub.ErrMalformed, doc.ID)
	}
	now := f.now()
	raw, err := doc.MarshalJSON()
	if err != nil {
		return nil, err
	}
	ra := store.RemoteActor{ID: doc.ID, Inbox: doc.Inbox, Raw: raw, FetchedAt: now, ExpiresAt: now.Add(24 * time.Hour)}
	if doc.Endpoints != nil {
		ra.SharedInbox = doc.Endpoints.SharedInbox
	}
	for _, k := range doc.PublicKey {
		if k.PublicKeyPem != "" {
			ra.Keys = append(ra.Keys, store.PublicKey{ID: k.ID, OwnerID: doc.ID, PEM: k.PublicKeyPem})
		}
	}
	if err := f.store.PutRemoteActor(ctx, ra); err != nil {
		return nil, err
	}
	return &ra, nil
}
