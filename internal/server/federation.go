package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/delivery"
	"github.com/fedforge/fedforge/internal/keys"
	"github.com/fedforge/fedforge/internal/store"
	"github.com/fedforge/fedforge/internal/urls"
)

// Recipient is one remote actor an activity goes to (personal and shared inbox).
type Recipient = delivery.Recipient

// Publisher hands a published activity to the durable delivery queue: it appends the
// activity to the store and enqueues one delivery per (shared) inbox in the same
// transaction. Republishing an activity ID is a no-op. *delivery.Publisher implements it.
type Publisher interface {
	Publish(ctx context.Context, a store.Activity, to []Recipient) error
}

// The finalizer and annotation of exchanges, from the API package.
const (
	AnnotationNoExchange = fedv1.AnnotationNoExchange
	FinalizerExchange    = fedv1.FinalizerExchange
)

// federation is the protocol side of one server: the inbox, the exchanges that follow
// from it, and the signing keys of the local actors. It reads Kubernetes objects from
// the informer cache and writes only Subscriptions and status.
type federation struct {
	srv      types.NamespacedName
	reader   client.Reader // the informer cache
	api      client.Reader // live reads for read-modify-write
	kube     client.Client
	store    store.Store
	client   *activitypub.Client
	verifier *activitypub.Verifier
	keyCache *activitypub.KeyCache
	keyStore activitypub.KeyStore
	keyTTL   time.Duration
	pub      Publisher
	now      func() time.Time
	log      logr.Logger
	refused  *refusals
	policies *policies
	// heardFrom tells the delivery executor that a host answered us with a verified
	// request, so a host marked unavailable comes back at once.
	heardFrom func(ctx context.Context, host string) error
	// recorder writes Events on actors (failed publishes).
	recorder events.EventRecorder
	// recent is the inbox's in-memory replay check (received.go).
	recent recentActivities

	mu      sync.Mutex
	signers map[types.UID]cachedSigner
}

// cachedSigner is a parsed key Secret, reused until the Secret changes.
type cachedSigner struct {
	resourceVersion string
	signer          *activitypub.Signer
}

// localActor is a served actor with its URLs.
type localActor struct {
	obj  *fedv1.FederatedActor
	urls urls.Actor
}

// errNotLocal means an IRI does not name one of this server's actors.
var errNotLocal = errors.New("not a local actor")

// baseURL reads the FederationServer's public base URL from the cache.
func (f *federation) baseURL(ctx context.Context) (string, *fedv1.FederationServer, error) {
	var fs fedv1.FederationServer
	if err := f.reader.Get(ctx, f.srv, &fs); err != nil {
		if apierrors.IsNotFound(err) {
			return "", nil, errNoServer
		}
		return "", nil, err
	}
	return fs.BaseURL(), &fs, nil
}

// localActorByIRI finds the served actor whose ID is iri.
func (f *federation) localActorByIRI(ctx context.Context, iri string) (*localActor, error) {
	base, _, err := f.baseURL(ctx)
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
	return f.localActorByName(ctx, name)
}

// localActorByName finds the served actor with this preferredUsername.
func (f *federation) localActorByName(ctx context.Context, username string) (*localActor, error) {
	base, _, err := f.baseURL(ctx)
	if err != nil {
		return nil, err
	}
	h := &handler{reader: f.reader, server: f.srv}
	a, err := h.actorByUsername(ctx, username, false)
	if err != nil {
		return nil, err
	}
	if a == nil {
		return nil, errNotLocal
	}
	return &localActor{obj: a, urls: urls.ForActor(base, a.Spec.PreferredUsername)}, nil
}

// localActorByObject finds the served actor of a FederatedActor name (actorRef).
func (f *federation) localActorByObject(ctx context.Context, name string) (*localActor, error) {
	var a fedv1.FederatedActor
	if err := f.reader.Get(ctx, types.NamespacedName{Namespace: f.srv.Namespace, Name: name}, &a); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, errNotLocal
		}
		return nil, err
	}
	if a.Spec.ServerRef.Name != f.srv.Name {
		return nil, errNotLocal
	}
	base, _, err := f.baseURL(ctx)
	if err != nil {
		return nil, err
	}
	return &localActor{obj: &a, urls: urls.ForActor(base, a.Spec.PreferredUsername)}, nil
}

// Signer returns the signer of a local actor by its ID, from its key Secret in the
// cache; the delivery executor calls it for every leased row.
func (f *federation) Signer(ctx context.Context, actorID string) (*activitypub.Signer, error) {
	if id, ok := strings.CutSuffix(actorID, previousKeySuffix); ok {
		la, err := f.localActorByIRI(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("previous-key signer for %s: %w", id, err)
		}
		return f.previousSigner(ctx, la)
	}
	la, err := f.localActorByIRI(ctx, actorID)
	if errors.Is(err, errNotLocal) {
		// An actor being deleted is no longer served, but still signs its farewell
		// Delete until its finalizer is removed.
		la, err = f.deletingActor(ctx, actorID)
	}
	if err != nil {
		return nil, fmt.Errorf("signer for %s: %w", actorID, err)
	}
	return f.signerFor(ctx, la)
}

// previousKeySuffix marks an activity to be signed with the actor's previous key (its
// store ActorID is <actor>#previous-key): the Update announcing rotated keys.
const previousKeySuffix = "#previous-key"

// previousSigner signs with the key before the last rotation, under the same keyId, so
// peers holding the old key verify; errNoKeys when the overlap has ended.
func (f *federation) previousSigner(ctx context.Context, la *localActor) (*activitypub.Signer, error) {
	var s corev1.Secret
	if err := f.reader.Get(ctx, types.NamespacedName{Namespace: la.obj.Namespace, Name: la.obj.Status.KeySecretName}, &s); err != nil {
		return nil, err
	}
	b := s.Data[keys.PreviousRSAPrivateKey]
	if len(b) == 0 {
		return nil, errNoKeys
	}
	k, err := activitypub.ParsePrivateKeyPEM(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", errNoKeys, keys.PreviousRSAPrivateKey, err)
	}
	return &activitypub.Signer{KeyID: la.urls.RSAKeyID(), Key: k, Now: f.now}, nil
}

// deletingActor finds an actor of this server that is being deleted by its ID.
func (f *federation) deletingActor(ctx context.Context, actorID string) (*localActor, error) {
	base, _, err := f.baseURL(ctx)
	if err != nil {
		return nil, err
	}
	var list fedv1.FederatedActorList
	if err := f.reader.List(ctx, &list, client.InNamespace(f.srv.Namespace), client.MatchingFields{indexActorServer: f.srv.Name}); err != nil {
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

// signerFor parses the actor's current RSA key from its Secret, once per Secret version.
func (f *federation) signerFor(ctx context.Context, la *localActor) (*activitypub.Signer, error) {
	name := la.obj.Status.KeySecretName
	if name == "" {
		return nil, errNoKeys
	}
	var s corev1.Secret
	if err := f.reader.Get(ctx, types.NamespacedName{Namespace: la.obj.Namespace, Name: name}, &s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, errNoKeys
		}
		return nil, err
	}
	f.mu.Lock()
	c, ok := f.signers[s.UID]
	f.mu.Unlock()
	if ok && c.resourceVersion == s.ResourceVersion && c.signer.KeyID == la.urls.RSAKeyID() {
		return c.signer, nil
	}
	pair, err := keys.FromData(s.Data)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errNoKeys, err)
	}
	sg := &activitypub.Signer{KeyID: la.urls.RSAKeyID(), Key: pair.RSA, Now: f.now}
	f.mu.Lock()
	if f.signers == nil {
		f.signers = map[types.UID]cachedSigner{}
	}
	f.signers[s.UID] = cachedSigner{resourceVersion: s.ResourceVersion, signer: sg}
	f.mu.Unlock()
	return sg, nil
}

// anySigner returns the signer of some served actor with keys, for fetches that are not
// on behalf of one actor (key lookups of authorized-fetch peers). nil when none has keys.
func (f *federation) anySigner(ctx context.Context) *activitypub.Signer {
	h := &handler{reader: f.reader, server: f.srv}
	all, err := h.actors(ctx, indexActorServer, f.srv.Name)
	if err != nil {
		return nil
	}
	base, _, err := f.baseURL(ctx)
	if err != nil {
		return nil
	}
	for i := range all {
		la := &localActor{obj: &all[i], urls: urls.ForActor(base, all[i].Spec.PreferredUsername)}
		if s, err := f.signerFor(ctx, la); err == nil {
			return s
		}
	}
	return nil
}

// activityID mints a deterministic ID for an activity of a local actor: the same kind
// and seed always give the same ID, so re-running an exchange republishes nothing.
func activityID(actorID, kind, seed string) string {
	sum := sha256.Sum256([]byte(kind + "\x00" + seed))
	return actorID + "/activities/" + strings.ToLower(kind) + "-" + hex.EncodeToString(sum[:12])
}

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
