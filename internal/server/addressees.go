package server

import (
	"context"
	"strings"

	"github.com/fedforge/fedforge/internal/activitypub"
)

// addressees returns the local actors an activity is filed for: the personal inbox's
// owner it was delivered to (recipient, nil for the shared inbox), the local actors that
// follow its actor, and the local actors it is addressed to. An activity that concerns
// none is acknowledged and dropped.
func (f *federation) addressees(ctx context.Context, act *activitypub.Object, recipient *localActor) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	add := func(id string) {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	if recipient != nil {
		add(recipient.urls.ID)
	}
	subs, err := f.subs.ofRemote(ctx, act.Actor.ID())
	if err != nil {
		return nil, err
	}
	for _, s := range subs {
		if !expectsPosts(&s) {
			continue
		}
		if la, err := f.actors.byObject(ctx, s.Spec.ActorRef.Name); err == nil {
			add(la.urls.ID)
		}
	}
	// Addressees that are local actors. Only IRIs under our actors' prefix can be
	// (the public collection and remote followers collections, the usual to and cc,
	// are not), so the prefix is read once and nothing else is looked up.
	prefix := ""
	for _, refs := range []activitypub.Refs{act.To, act.Cc, act.Audience} {
		for _, ref := range refs {
			id := ref.ID()
			if id == "" || activitypub.IsPublicIRI(id) {
				continue
			}
			if prefix == "" {
				base, _, err := f.actors.baseURL(ctx)
				if err != nil {
					return out, nil // as localActorByIRI: no local addressee found
				}
				prefix = strings.TrimRight(base, "/") + "/actors/"
			}
			if !strings.HasPrefix(id, prefix) {
				continue
			}
			if la, err := f.actors.byIRI(ctx, id); err == nil {
				add(la.urls.ID)
			}
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}
