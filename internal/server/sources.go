package server

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/forge"
	"github.com/fedforge/fedforge/internal/forge/feed"
	"github.com/fedforge/fedforge/internal/sources"
	"github.com/fedforge/fedforge/internal/store"
)

// secretTTL is how long a user Secret (webhook secret, outbox token) read by the server
// is reused. Those Secrets are not labelled, so they are not in the informer cache; a
// short-lived cache keeps webhooks from costing an API call each, and a rotated secret
// takes effect within the TTL.
const secretTTL = time.Minute

// secretCache reads Secret keys through the API with a TTL.
type secretCache struct {
	f  *federation
	mu sync.Mutex
	m  map[types.NamespacedName]cachedSecret
}

type cachedSecret struct {
	data map[string][]byte
	at   time.Time
}

// get implements sources.SecretFunc.
func (c *secretCache) get(ctx context.Context, namespace string, ref fedv1.SecretKeyReference) ([]byte, error) {
	key := types.NamespacedName{Namespace: namespace, Name: ref.Name}
	now := c.f.now()
	c.mu.Lock()
	e, ok := c.m[key]
	c.mu.Unlock()
	if !ok || now.Sub(e.at) > secretTTL {
		var s corev1.Secret
		if err := c.f.subs.api.Get(ctx, key, &s); err != nil {
			return nil, fmt.Errorf("reading Secret %s: %w", key, err)
		}
		e = cachedSecret{data: s.Data, at: now}
		c.mu.Lock()
		if c.m == nil || len(c.m) > 10000 {
			c.m = map[types.NamespacedName]cachedSecret{}
		}
		c.m[key] = e
		c.mu.Unlock()
	}
	k := ref.Key
	if k == "" {
		k = "token"
	}
	v, ok := e.data[k]
	if !ok {
		return nil, fmt.Errorf("Secret %s has no key %q", key, k)
	}
	return v, nil
}

// publishToFollowers implements render.PublishFunc: each rendered activity goes to the
// actor's outbox and, through the durable queue, to its followers' (shared) inboxes. It
// writes nothing to the API server, whatever the number of followers.
func (f *federation) publishToFollowers(ctx context.Context, actor *fedv1.FederatedActor, src *fedv1.EventSource, acts []store.Activity) error {
	inboxes, err := f.publishActivities(ctx, actor, acts)
	from := "the outbox"
	if src != nil {
		from = "source " + src.Name
	}
	f.publishEvent(actor, from, len(acts), inboxes, err)
	return err
}

// publishActivities queues acts for the actor's followers and returns the number of
// (shared) inboxes they go to.
func (f *federation) publishActivities(ctx context.Context, actor *fedv1.FederatedActor, acts []store.Activity) (int, error) {
	base, _, err := f.actors.baseURL(ctx)
	if err != nil {
		return 0, err
	}
	la := &localActor{obj: actor, urls: urlsFor(base, actor)}
	followers, err := f.followers(ctx, la)
	if err != nil {
		return 0, err
	}
	for _, a := range acts {
		if a.ActorID != la.urls.ID {
			return 0, fmt.Errorf("activity %s is attributed to %s, not %s", a.ID, a.ActorID, la.urls.ID)
		}
		to, err := f.ticketAudience(ctx, la, a.Raw, followers)
		if err != nil {
			return 0, err
		}
		if to, err = f.addressedRemotes(ctx, la, a.Raw, to); err != nil {
			return 0, err
		}
		if err := f.pub.Publish(ctx, a, to); err != nil {
			return 0, err
		}
	}
	return len(followers), nil
}

// recordForgeEvent implements sources.WebhookConfig.Observe (run by the webhook queue's
// worker, in the order the source's events were accepted): a fork made in the forge
// (KindFork: upstream Event.Repository, the new repository Event.Fork) is listed in the
// upstream Repository actor's forks collection, and a star (KindStar) counted in its
// likes, or taken back when the forge says it was removed. It runs whether or not the
// source posts forks and stars to followers: the collections say what the forge says.
// A fork that a local Repository actor fronts is listed by that actor's id, so a peer
// can follow it; any other fork by its page on the forge.
func (f *federation) recordForgeEvent(ctx context.Context, actor *fedv1.FederatedActor, ev *forge.Event) error {
	if err := f.offerMergeRequest(ctx, actor, ev); err != nil { // merge_request_offer.go (issue 14)
		return err
	}
	f.forgetPull(ctx, actor, ev)                              // merge_request_document.go: the Ticket shows the change at once
	if err := f.withdrawOffered(ctx, actor, ev); err != nil { // merge_request_withdraw.go (issue 14)
		return err
	}
	if actor.Spec.Type != fedv1.ActorRepository || (ev.Kind != forge.KindFork && ev.Kind != forge.KindStar) {
		return nil
	}
	base, err := f.base(ctx)
	if err != nil {
		return err
	}
	id := urlsFor(base, actor).ID
	log := f.log.WithValues("actor", id, "kind", ev.Kind, "delivery", ev.DeliveryID)
	if ev.Kind == forge.KindFork {
		fork, err := f.forkID(ctx, base, ev.Fork.WebURL)
		if err != nil || fork == "" {
			log.Info("fork event without the fork's page: not listed", "error", err)
			return err
		}
		created, err := f.store.RecordFork(ctx, store.Fork{ActorID: id, ForkID: fork, Via: store.ViaForge, Created: f.now().UTC()})
		log.V(1).Info("forge fork recorded", "fork", fork, "new", created)
		return err
	}
	liker := forgeUserPage(ev)
	if liker == "" {
		log.Info("star event without the user: not counted")
		return nil
	}
	if ev.Action == forge.ActionDeleted {
		_, err := f.store.RemoveLike(ctx, id, liker, store.ViaForge)
		return err
	}
	_, err = f.store.RecordLike(ctx, store.Like{ActorID: id, LikerID: liker, Via: store.ViaForge, Created: f.now().UTC()})
	return err
}

// forkID is what the forks collection lists for a fork whose forge page is page: the id
// of the local Repository actor whose status.forge shows that page, else the page.
func (f *federation) forkID(ctx context.Context, base, page string) (string, error) {
	if page == "" {
		return "", nil
	}
	all, err := f.actors.list(ctx, indexActorServer, f.srv.Name)
	if err != nil {
		return "", err
	}
	for i := range all {
		a := &all[i]
		if a.Spec.Type == fedv1.ActorRepository && a.Status.Forge != nil && a.Status.Forge.WebURL != "" &&
			strings.TrimRight(a.Status.Forge.WebURL, "/") == strings.TrimRight(page, "/") {
			return urlsFor(base, a).ID, nil
		}
	}
	return page, nil
}

// forgeUserPage is who gave a star: the forge user's profile page, or, when the payload
// has none, the user's page under the forge's host (every supported forge serves a user
// at /<username>).
func forgeUserPage(ev *forge.Event) string {
	if ev.Actor.URL != "" {
		return ev.Actor.URL
	}
	u, err := url.Parse(ev.Repository.WebURL)
	if ev.Actor.Username == "" || err != nil || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host + "/" + url.PathEscape(ev.Actor.Username)
}

// lookupSource implements sources.LookupFunc.
func (f *federation) lookupSource(ctx context.Context, username, source string) (*fedv1.FederatedActor, *fedv1.EventSource, error) {
	la, err := f.actors.byName(ctx, username)
	if errors.Is(err, errNotLocal) {
		return nil, nil, nil
	} else if err != nil {
		return nil, nil, err
	}
	for i := range la.obj.Spec.Sources {
		if s := &la.obj.Spec.Sources[i]; s.Name == source && s.Type != fedv1.SourceFeed {
			return la.obj.DeepCopy(), s.DeepCopy(), nil
		}
	}
	return la.obj.DeepCopy(), nil, nil
}

// feedSources lists the Feed sources of this server's actors, from the cache.
func (f *federation) feedSources(ctx context.Context) ([]feed.FeedTarget, error) {
	all, err := f.actors.list(ctx, indexActorServer, f.srv.Name)
	if err != nil {
		return nil, err
	}
	var out []feed.FeedTarget
	for i := range all {
		for j := range all[i].Spec.Sources {
			if s := &all[i].Spec.Sources[j]; s.Type == fedv1.SourceFeed && s.Feed != nil {
				out = append(out, feed.FeedTarget{Actor: all[i].DeepCopy(), Source: s.DeepCopy()})
			}
		}
	}
	return out, nil
}

func (f *federation) base(ctx context.Context) (string, error) {
	b, _, err := f.actors.baseURL(ctx)
	return b, err
}

// setupSources builds the webhook and client-to-server outbox handlers and registers the
// webhook queue's worker, which runs on every replica (leases keep an event on one), and
// the feed poller, which runs on the elected replica.
func (s *Server) setupSources(reg prometheus.Registerer) error {
	f := s.fed
	secrets := &secretCache{f: f}
	wh, err := sources.NewWebhookHandler(sources.WebhookConfig{
		Lookup: f.lookupSource, Secret: secrets.get, Publish: f.publishToFollowers, Base: f.base, Queue: f.store,
		Observe: f.recordForgeEvent, Topics: (&topicReader{f: f}).topics, Upstream: f.upstreamOfEvent,
		Now: f.now, Log: f.log.WithName("webhook"), Metrics: reg,
	})
	if err != nil {
		return err
	}
	ob, err := sources.NewOutboxHandler(sources.OutboxConfig{
		Lookup: func(ctx context.Context, username string) (*fedv1.FederatedActor, error) {
			la, err := f.actors.byName(ctx, username)
			if errors.Is(err, errNotLocal) {
				return nil, nil
			} else if err != nil {
				return nil, err
			}
			return la.obj.DeepCopy(), nil
		},
		Secret: secrets.get, Publish: f.publishToFollowers, Base: f.base, Now: f.now,
		Log: f.log.WithName("outbox"), Metrics: reg,
	})
	if err != nil {
		return err
	}
	poller, err := feed.NewPoller(feed.PollerConfig{
		Sources: f.feedSources, Store: f.store,
		Fetcher: feed.NewFeedFetcher(f.client, feed.FeedFetcherConfig{AllowHTTP: s.opts.AllowHTTP}),
		Publish: f.publishToFollowers, Base: f.base, Log: f.log.WithName("feeds"), Metrics: reg,
		Tick: s.opts.FeedTick,
	})
	if err != nil {
		return err
	}
	s.webhooks, s.c2s, s.inboxRead = wh, ob, f.inboxCollection(secrets)
	s.lookup = f.lookupEndpoint(secrets)
	if err := s.mgr.Add(everyReplica(func(ctx context.Context) error {
		if !s.cache.WaitForCacheSync(ctx) {
			return nil
		}
		return wh.Run(ctx)
	})); err != nil {
		return err
	}
	return s.mgr.Add(manager.RunnableFunc(poller.Run))
}
