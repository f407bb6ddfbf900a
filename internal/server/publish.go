package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/delivery"
	"github.com/fedforge/fedforge/internal/store"
)

// Recipient is one remote actor an activity goes to (personal and shared inbox).
type Recipient = delivery.Recipient

// Publisher hands a published activity to the durable delivery queue: it appends the
// activity to the store and enqueues one delivery per (shared) inbox in the same
// transaction. Republishing an activity ID is a no-op. *delivery.Publisher implements it.
type Publisher interface {
	Publish(ctx context.Context, a store.Activity, to []Recipient) error
}

// activityID mints a deterministic ID for an activity of a local actor: the same kind
// and seed always give the same ID, so re-running an exchange republishes nothing.
func activityID(actorID, kind, seed string) string {
	sum := sha256.Sum256([]byte(kind + "\x00" + seed))
	return actorID + "/activities/" + strings.ToLower(kind) + "-" + hex.EncodeToString(sum[:12])
}

// publish builds an activity of a local actor and hands it to the delivery queue.
func (f *federation) publish(ctx context.Context, la *localActor, act *activitypub.Object, vis store.Visibility, to []Recipient) error {
	return f.publishAs(ctx, la, la.urls.ID, act, vis, to)
}

// publishAs publishes with a given signing identity (the actor's ID, or its ID with
// previousKeySuffix).
func (f *federation) publishAs(ctx context.Context, la *localActor, signAs string, act *activitypub.Object, vis store.Visibility, to []Recipient) error {
	raw, err := act.MarshalJSON()
	if err != nil {
		return err
	}
	a := store.Activity{
		ID: act.ID, ActorID: signAs, Type: act.Type[0], ObjectID: act.Object.ID(),
		Visibility: vis, Published: f.now().UTC(), Raw: raw,
	}
	if err := f.pub.Publish(ctx, a, to); err != nil {
		return fmt.Errorf("publishing %s %s: %w", a.Type, a.ID, err)
	}
	return nil
}
