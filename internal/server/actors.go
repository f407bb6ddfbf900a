package server

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/urls"
)

// actors finds this server's local actors and their signing keys, reading only the
// informer cache: every lookup of a request or an exchange, never an API call. The inbox,
// the exchanges, the documents and the delivery executor (through Signer) share one.
type actors struct {
	reader client.Reader // the informer cache
	srv    types.NamespacedName
	now    func() time.Time

	mu      sync.Mutex
	signers map[types.UID]cachedSigner
}

// localActor is a served actor with its URLs.
type localActor struct {
	obj  *fedv1.FederatedActor
	urls urls.Actor
}

// errNotLocal means an IRI does not name one of this server's actors.
var errNotLocal = errors.New("not a local actor")

// baseURL reads the FederationServer's public base URL from the cache. The object it
// returns is the cache's own, not a copy: callers only read it. Every inbox POST asks
// for the base URL (addressees, mentions) and the deep copy of the FederationServer,
// status included, was about 3 % of a POST's CPU in the inbox profiles (issue 17).
func (ac *actors) baseURL(ctx context.Context) (string, *fedv1.FederationServer, error) {
	var fs fedv1.FederationServer
	if err := ac.reader.Get(ctx, ac.srv, &fs, client.UnsafeDisableDeepCopy); err != nil {
		if apierrors.IsNotFound(err) {
			return "", nil, errNoServer
		}
		return "", nil, err
	}
	return fs.BaseURL(), &fs, nil
}

// publicOrigin is the FederationServer's public base URL, parsed: the scheme and host
// peers address and sign (RFC 9421 @target-uri), whatever the proxy in front of this
// process speaks to it.
func (ac *actors) publicOrigin(ctx context.Context) (*url.URL, error) {
	base, _, err := ac.baseURL(ctx)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("server %s: base URL %q: %w", ac.srv, base, err)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("server %s: base URL %q has no host", ac.srv, base)
	}
	return u, nil
}

// byIRI finds the served actor whose ID is iri.
func (ac *actors) byIRI(ctx context.Context, iri string) (*localActor, error) {
	base, _, err := ac.baseURL(ctx)
	if err != nil {
		return nil, err
	}
	rest, ok := strings.CutPrefix(iri, strings.TrimRight(base, "/")+"/actors/")
	if !ok || rest == "" || strings.ContainsAny(rest, "/?#") {
		return nil, errNotLocal
	}
	name, err := url.PathUnescape(rest)
	if err != nil {
		return nil, errNotLocal
	}
	return ac.byName(ctx, name)
}

// byName finds the served actor with this preferredUsername.
func (ac *actors) byName(ctx context.Context, username string) (*localActor, error) {
	base, _, err := ac.baseURL(ctx)
	if err != nil {
		return nil, err
	}
	a, err := ac.byUsername(ctx, username, false)
	if err != nil {
		return nil, err
	}
	if a == nil {
		return nil, errNotLocal
	}
	return &localActor{obj: a, urls: urls.ForActor(base, a.Spec.PreferredUsername)}, nil
}

// byObject finds the served actor of a FederatedActor name (actorRef).
func (ac *actors) byObject(ctx context.Context, name string) (*localActor, error) {
	var a fedv1.FederatedActor
	if err := ac.reader.Get(ctx, types.NamespacedName{Namespace: ac.srv.Namespace, Name: name}, &a); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, errNotLocal
		}
		return nil, err
	}
	if a.Spec.ServerRef.Name != ac.srv.Name {
		return nil, errNotLocal
	}
	base, _, err := ac.baseURL(ctx)
	if err != nil {
		return nil, err
	}
	return &localActor{obj: &a, urls: urls.ForActor(base, a.Spec.PreferredUsername)}, nil
}

// deleting finds an actor of this server that is being deleted by its ID.
func (ac *actors) deleting(ctx context.Context, actorID string) (*localActor, error) {
	base, _, err := ac.baseURL(ctx)
	if err != nil {
		return nil, err
	}
	var list fedv1.FederatedActorList
	if err := ac.reader.List(ctx, &list, client.InNamespace(ac.srv.Namespace), client.MatchingFields{indexActorServer: ac.srv.Name}); err != nil {
		return nil, err
	}
	for i := range list.Items {
		a := &list.Items[i]
		if u := urls.ForActor(base, a.Spec.PreferredUsername); u.ID == actorID && a.DeletionTimestamp != nil {
			return &localActor{obj: a, urls: u}, nil
		}
	}
	return nil, errNotLocal
}

func urlsFor(base string, a *fedv1.FederatedActor) urls.Actor {
	return urls.ForActor(base, a.Spec.PreferredUsername)
}

// errNoServer means the FederationServer is not (yet) in the cache.
var errNoServer = errors.New("server: FederationServer not found")

// server reads this process's FederationServer from the cache.
func (ac *actors) server(ctx context.Context) (*fedv1.FederationServer, error) {
	var fs fedv1.FederationServer
	if err := ac.reader.Get(ctx, ac.srv, &fs); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, errNoServer
		}
		return nil, err
	}
	return &fs, nil
}

// Cache indexes of FederatedActors, so that a request reads only the actors it needs.
const (
	// indexActorServer is spec.serverRef.name.
	indexActorServer = "fedforge.serverRef"
	// indexActorUsername is spec.serverRef.name + "/" + lower-cased preferredUsername.
	indexActorUsername = "fedforge.serverUsername"
)

// indexActors registers the actor indexes on c; it must run before c starts.
func indexActors(ctx context.Context, c cache.Cache) error {
	if err := c.IndexField(ctx, &fedv1.FederatedActor{}, indexActorServer, func(o client.Object) []string {
		return []string{o.(*fedv1.FederatedActor).Spec.ServerRef.Name}
	}); err != nil {
		return err
	}
	return c.IndexField(ctx, &fedv1.FederatedActor{}, indexActorUsername, func(o client.Object) []string {
		a := o.(*fedv1.FederatedActor)
		return []string{usernameKey(a.Spec.ServerRef.Name, a.Spec.PreferredUsername)}
	})
}

func usernameKey(server, username string) string {
	return server + "/" + strings.ToLower(username)
}

// list lists the actors this server serves (matching the given index), leaving out
// those being deleted. They come sorted by creation, then name, so that when two actors
// claim one username (which the operator reports as UsernameConflict) the older one is
// served. The objects are the cache's own (no deep copy): callers only read them.
func (ac *actors) list(ctx context.Context, field, value string) ([]fedv1.FederatedActor, error) {
	var list fedv1.FederatedActorList
	if err := ac.reader.List(ctx, &list, client.InNamespace(ac.srv.Namespace),
		client.MatchingFields{field: value}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	out := make([]fedv1.FederatedActor, 0, len(list.Items))
	for _, a := range list.Items {
		if a.Spec.ServerRef.Name == ac.srv.Name && a.DeletionTimestamp == nil {
			out = append(out, a)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		ti, tj := out[i].CreationTimestamp, out[j].CreationTimestamp
		if !ti.Equal(&tj) {
			return ti.Before(&tj)
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// byUsername finds a served actor by preferredUsername; fold makes the match
// case-insensitive, as acct: lookups are.
func (ac *actors) byUsername(ctx context.Context, username string, fold bool) (*fedv1.FederatedActor, error) {
	all, err := ac.list(ctx, indexActorUsername, usernameKey(ac.srv.Name, username))
	if err != nil {
		return nil, err
	}
	for i := range all {
		u := all[i].Spec.PreferredUsername
		if u == username || (fold && strings.EqualFold(u, username)) {
			return &all[i], nil
		}
	}
	return nil, nil
}
