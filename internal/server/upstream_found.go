package server

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"sync"
	"time"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/store"
)

// Finding the upstream from the forge's own record (issue 14, fork side): a Repository
// actor with spec.forge and no spec.mergeRequests.upstream asks its forge where the
// repository was migrated from (Gitea's original_url), and takes as its upstream the
// Repository actor, among the remote actors this server already knows (its cache: actors
// someone here followed, or that wrote here), whose cloneUri is that URL. The upstream
// found is recorded with the fork notice (store.ForkNotice.Found), and then serves like a
// declared one: the actor document's forkedFrom, the Offers. A declared upstream always
// wins. A repository that was not migrated, or whose origin is no known actor's cloneUri,
// has no upstream; the forge is asked again after upstreamRecheck.

// upstreamRecheck spaces the forge reads of one actor that found no upstream: the actor is
// reconciled on every change of its Subscriptions, which must not each cost a forge call.
const upstreamRecheck = 10 * time.Minute

// upstreamMemo remembers when each actor last looked for its upstream in vain.
type upstreamMemo struct {
	mu   sync.Mutex
	last map[string]time.Time
}

// due says whether actorID may ask its forge now.
func (m *upstreamMemo) due(actorID string, now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	at, ok := m.last[actorID]
	return !ok || now.Sub(at) >= upstreamRecheck
}

// missed notes that actorID asked in vain at now.
func (m *upstreamMemo) missed(actorID string, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.last == nil || len(m.last) > 10000 {
		m.last = map[string]time.Time{}
	}
	m.last[actorID] = now
}

// upstreamOf is the upstream a local actor's pull requests are offered to: declared in
// spec.mergeRequests.upstream, else the one found from the forge and recorded, else "".
func (f *federation) upstreamOf(ctx context.Context, la *localActor) (string, error) {
	if up := mergeRequestUpstream(la.obj); up != "" {
		return up, nil
	}
	n, err := f.store.ForkNoticeOf(ctx, la.urls.ID)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	} else if err != nil {
		return "", err
	}
	if n.Found {
		return n.UpstreamID, nil
	}
	return "", nil
}

// findUpstream looks for the upstream of an actor that declares none (see above); "" when
// there is none, or when the forge cannot say now (logged; asked again later).
func (f *federation) findUpstream(ctx context.Context, la *localActor) (string, error) {
	a := la.obj
	if a.Spec.Type != fedv1.ActorRepository || a.Spec.Forge == nil {
		return "", nil
	}
	if n, err := f.store.ForkNoticeOf(ctx, la.urls.ID); err == nil && n.Found {
		return n.UpstreamID, nil // a migration's origin does not change
	} else if err != nil && !errors.Is(err, store.ErrNotFound) {
		return "", err
	}
	if !f.upstreamLookups.due(la.urls.ID, f.now()) {
		return "", nil
	}
	log := f.log.WithValues("actor", la.urls.ID)
	w, _, err := f.tickets.writer(ctx, la)
	if err != nil {
		log.V(1).Info("no forge writer to read the repository's origin", "reason", err.Error())
		return "", nil
	}
	info, err := w.Check(ctx)
	if err != nil {
		f.upstreamLookups.missed(la.urls.ID, f.now())
		log.Info("reading the repository's origin from the forge failed; asked again later", "error", err.Error())
		return "", nil
	}
	origin := cloneKey(info.OriginalURL)
	if origin == "" {
		f.upstreamLookups.missed(la.urls.ID, f.now())
		return "", nil
	}
	cands, err := f.store.RemoteActorsMentioning(ctx, origin, 20)
	if err != nil {
		return "", err
	}
	for _, c := range cands {
		doc, err := activitypub.DecodeObject(c.Raw)
		if err != nil || doc.ID != c.ID || !doc.Type.Has(activitypub.TypeRepository) {
			continue
		}
		for _, u := range doc.CloneURI.IDs() {
			if cloneKey(u) == origin {
				log.Info("upstream found from the forge's record of the migration", "upstream", doc.ID, "origin", info.OriginalURL)
				return doc.ID, nil
			}
		}
	}
	f.upstreamLookups.missed(la.urls.ID, f.now())
	log.V(1).Info("the repository's origin is no known Repository actor's cloneUri", "origin", info.OriginalURL)
	return "", nil
}

// cloneKey is a clone URL reduced for comparison: scheme and host lowercased, no user
// information, query or trailing "/" or ".git". "" for anything but an http(s) URL.
func cloneKey(u string) string {
	p, err := url.Parse(strings.TrimSpace(u))
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return ""
	}
	path := strings.TrimSuffix(strings.TrimSuffix(p.Path, "/"), ".git")
	return strings.ToLower(p.Scheme) + "://" + strings.ToLower(p.Host) + path
}

// foundUpstream is the upstream found from the forge for a fronting Repository actor
// without a declared one, for its document's forkedFrom; "" otherwise. One store read,
// only for such actors.
func (d *documents) foundUpstream(ctx context.Context, a *fedv1.FederatedActor, id string) string {
	if d.notices == nil || a.Spec.Type != fedv1.ActorRepository || a.Spec.Forge == nil || mergeRequestUpstream(a) != "" {
		return ""
	}
	if n, err := d.notices.ForkNoticeOf(ctx, id); err == nil && n.Found {
		return n.UpstreamID
	}
	return ""
}
