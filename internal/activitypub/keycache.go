package activitypub

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// StoredKey is a remote key as the store persists it: text, not parsed keys, so that any
// backend can hold it. A negative entry records that the key could not be used.
type StoredKey struct {
	KeyID     string
	Owner     string
	PEM       string // publicKeyPem, or "" for a Multikey
	Multibase string // publicKeyMultibase, or ""
	FetchedAt time.Time
	ExpiresAt time.Time
	Negative  bool   // the key is known to be unusable until ExpiresAt
	Reason    string // why, for negative entries
}

// KeyStore persists remote keys across restarts and replicas. The store package
// implements it on SQLite/PostgreSQL; MemoryKeyStore is the default.
type KeyStore interface {
	// GetKey returns the stored key, or (nil, nil) when there is none.
	GetKey(ctx context.Context, keyID string) (*StoredKey, error)
	PutKey(ctx context.Context, k *StoredKey) error
}

// MemoryKeyStore is a KeyStore in process memory, for tests and single-process runs.
type MemoryKeyStore struct {
	mu sync.Mutex
	m  map[string]StoredKey
}

// GetKey implements KeyStore.
func (s *MemoryKeyStore) GetKey(_ context.Context, keyID string) (*StoredKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.m[keyID]
	if !ok {
		return nil, nil
	}
	return &k, nil
}

// PutKey implements KeyStore.
func (s *MemoryKeyStore) PutKey(_ context.Context, k *StoredKey) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[string]StoredKey)
	}
	s.m[k.KeyID] = *k
	return nil
}

// KeyCacheConfig tunes the remote key cache.
type KeyCacheConfig struct {
	TTL         time.Duration // how long a fetched key is trusted, default 24 h
	NegativeTTL time.Duration // how long a failed key stays failed, default 10 min
	// RefetchInterval is the least time between two refetches of one key after failed
	// verifications (rotation); Mastodon uses a day, default 1 h.
	RefetchInterval time.Duration
	MaxEntries      int     // parsed keys kept in memory, default 10000
	Signer          *Signer // signs key fetches (authorized fetch); nil sends them unsigned
	// SignerFunc, when set, is asked for the signer of each fetch instead of Signer, for
	// servers whose actors (and keys) come and go.
	SignerFunc func(ctx context.Context) *Signer
	// OnActor, when set, is given every actor document fetched to find a key (its owner
	// checked), so that callers can cache it instead of fetching it again.
	OnActor func(ctx context.Context, actor *Object)
	Now     func() time.Time
}

// KeyCache resolves keyIds to verified keys: it fetches the key (or the actor holding it)
// through the Client, checks that the owner actor lists the key, parses it once and keeps
// it with expiry; failures are cached too. Concurrent resolutions of one keyId share one
// fetch. It implements KeyResolver.
type KeyCache struct {
	client *Client
	store  KeyStore
	cfg    KeyCacheConfig
	group  singleflight.Group

	mu  sync.Mutex
	mem map[string]*RemoteKey
}

// NewKeyCache returns a KeyCache fetching with client and persisting in store (nil means
// a MemoryKeyStore).
func NewKeyCache(client *Client, store KeyStore, cfg KeyCacheConfig) *KeyCache {
	if store == nil {
		store = &MemoryKeyStore{}
	}
	if cfg.TTL == 0 {
		cfg.TTL = 24 * time.Hour
	}
	if cfg.NegativeTTL == 0 {
		cfg.NegativeTTL = 10 * time.Minute
	}
	if cfg.RefetchInterval == 0 {
		cfg.RefetchInterval = time.Hour
	}
	if cfg.MaxEntries == 0 {
		cfg.MaxEntries = 10000
	}
	return &KeyCache{client: client, store: store, cfg: cfg, mem: make(map[string]*RemoteKey)}
}

func (kc *KeyCache) now() time.Time {
	if kc.cfg.Now != nil {
		return kc.cfg.Now()
	}
	return time.Now()
}

// ResolveKey implements KeyResolver. With refresh it refetches, unless the key was
// fetched less than RefetchInterval ago, in which case the cached key is returned.
func (kc *KeyCache) ResolveKey(ctx context.Context, keyID string, refresh bool) (*RemoteKey, error) {
	host := hostOf(keyID)
	if host == "" {
		return nil, newErr(KindMalformed, "", nil, "keyId %q is not a URL", keyID)
	}
	now := kc.now()
	sk, err := kc.store.GetKey(ctx, keyID)
	if err != nil {
		return nil, newErr(KindUnknownKey, host, err, "key store")
	}
	if sk != nil {
		fresh := now.Before(sk.ExpiresAt)
		switch {
		case sk.Negative && fresh && !refresh:
			return nil, newErr(KindUnknownKey, host, nil, "key %s failed recently: %s", keyID, sk.Reason)
		case !sk.Negative && refresh && now.Sub(sk.FetchedAt) < kc.cfg.RefetchInterval:
			return kc.parsed(sk)
		case !sk.Negative && fresh && !refresh:
			return kc.parsed(sk)
		case sk.Negative && refresh && now.Sub(sk.FetchedAt) < kc.cfg.RefetchInterval:
			return nil, newErr(KindUnknownKey, host, nil, "key %s failed recently: %s", keyID, sk.Reason)
		}
	}
	// A key bound to an actor stays bound to it, also through failures (the negative entry
	// keeps the owner): no later document can rebind it to another actor.
	boundTo := ""
	if sk != nil {
		boundTo = sk.Owner
	}
	v, err, _ := kc.group.Do(keyID, func() (any, error) {
		k, ferr := kc.fetch(ctx, keyID)
		if ferr == nil && boundTo != "" && k.Owner != boundTo {
			// Not cached as a failure: the binding must survive.
			return nil, newErr(KindWrongOwner, host, nil, "key %s is bound to %s, now served as %s's", keyID, boundTo, k.Owner)
		}
		if ferr != nil {
			var e *Error
			// Transient failures (remote 5xx, timeouts) are not cached; bad keys are.
			if errors.As(ferr, &e) && e.Kind != KindRemote {
				_ = kc.store.PutKey(ctx, &StoredKey{KeyID: keyID, Owner: boundTo, FetchedAt: now, ExpiresAt: now.Add(kc.cfg.NegativeTTL), Negative: true, Reason: e.Msg})
			}
			return nil, ferr
		}
		k.FetchedAt = now
		k.ExpiresAt = now.Add(kc.cfg.TTL)
		if err := kc.store.PutKey(ctx, k); err != nil {
			return nil, newErr(KindUnknownKey, host, err, "key store")
		}
		kc.mu.Lock()
		delete(kc.mem, keyID)
		kc.mu.Unlock()
		return kc.parsed(k)
	})
	if err != nil {
		return nil, asKeyError(err, host, keyID)
	}
	return v.(*RemoteKey), nil
}

// signer returns the signer of a key fetch, if any.
func (kc *KeyCache) signer(ctx context.Context) *Signer {
	if kc.cfg.SignerFunc != nil {
		return kc.cfg.SignerFunc(ctx)
	}
	return kc.cfg.Signer
}

// parsed returns the in-memory parsed form of a stored key, parsing it at most once per
// fetch.
func (kc *KeyCache) parsed(sk *StoredKey) (*RemoteKey, error) {
	kc.mu.Lock()
	if k, ok := kc.mem[sk.KeyID]; ok && k.FetchedAt.Equal(sk.FetchedAt) {
		kc.mu.Unlock()
		return k, nil
	}
	kc.mu.Unlock()
	rk := &RemoteKey{ID: sk.KeyID, Owner: sk.Owner, FetchedAt: sk.FetchedAt}
	var err error
	if sk.PEM != "" {
		rk.Key, err = ParsePublicKeyPEM(sk.PEM)
	} else {
		rk.Key, err = DecodeMultibaseKey(sk.Multibase)
	}
	if err != nil {
		return nil, withHost(err, hostOf(sk.KeyID))
	}
	kc.mu.Lock()
	if len(kc.mem) >= kc.cfg.MaxEntries {
		for k := range kc.mem {
			delete(kc.mem, k)
			break
		}
	}
	kc.mem[sk.KeyID] = rk
	kc.mu.Unlock()
	return rk, nil
}

// fetch dereferences keyID under the provenance rules (docs/decisions.md): every
// document comes from FetchObject, so it was served from its own id. Mastodon-style ids
// (<actor>#main-key) return the actor with the key embedded; GoToSocial's key path
// (<actor>/main-key) serves a stub claiming the actor's id, which FetchObject follows to
// the actor; a key document of its own (id = keyID, with owner or controller) is accepted
// only when its owner, fetched from its own id on the same host, lists the key. A
// document that neither lists the key nor is the key is refused.
func (kc *KeyCache) fetch(ctx context.Context, keyID string) (*StoredKey, error) {
	host := hostOf(keyID)
	docURL, _, _ := strings.Cut(keyID, "#")
	doc, err := kc.client.FetchObject(ctx, docURL, kc.signer(ctx))
	if err != nil {
		return nil, err
	}
	if sk, ok, err := keyFromActor(doc, keyID); ok || err != nil {
		if err == nil && kc.cfg.OnActor != nil {
			kc.cfg.OnActor(ctx, doc)
		}
		return sk, err
	}
	// A key document: it must be the key itself, and it names its owner.
	if !sameIRI(doc.ID, keyID) && !sameIRI(doc.ID, docURL) {
		return nil, newErr(KindWrongOwner, host, nil, "%s (served as %s) neither lists key %s nor is it", docURL, doc.ID, keyID)
	}
	owner := ""
	if v, ok := doc.Extra["owner"]; ok {
		_ = unmarshalString(v, &owner)
	}
	if c, ok := doc.Extra["controller"]; ok && owner == "" {
		_ = unmarshalString(c, &owner)
	}
	if owner == "" {
		return nil, newErr(KindUnknownKey, host, nil, "%s is neither an actor listing the key nor a key with an owner", docURL)
	}
	if !sameHost(owner, keyID) {
		return nil, newErr(KindWrongOwner, host, nil, "key %s claims owner %s on another host", keyID, owner)
	}
	actor, err := kc.client.FetchObject(ctx, owner, kc.signer(ctx))
	if err != nil {
		return nil, err
	}
	if actor.ID != owner {
		return nil, newErr(KindWrongOwner, host, nil, "owner document is %s, not %s", actor.ID, owner)
	}
	sk, ok, err := keyFromActor(actor, keyID)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, newErr(KindWrongOwner, host, nil, "actor %s does not list key %s", owner, keyID)
	}
	if kc.cfg.OnActor != nil {
		kc.cfg.OnActor(ctx, actor)
	}
	return sk, nil
}

// PutActorKeys takes the keys an actor states in its own document, delivered by the
// actor itself (an Update whose signature the inbox verified as the actor's), so that a
// rotation needs no refetch. Only keys whose owner (controller) is the actor are read, and
// each must live under the actor's document (KeyUnderActor) and must not be bound to
// another actor already; one key that breaks a rule refuses the whole document and
// nothing is stored (KindWrongOwner; a key that does not parse is an *Error too). A
// failure of the key store is a plain error. It returns the number of keys stored.
func (kc *KeyCache) PutActorKeys(ctx context.Context, actor *Object) (int, error) {
	host := hostOf(actor.ID)
	now := kc.now()
	var keys []*StoredKey
	add := func(id, pem, multibase string) error {
		if !KeyUnderActor(id, actor.ID) {
			return newErr(KindWrongOwner, host, nil, "key %s does not live under the document of %s", id, actor.ID)
		}
		sk, err := kc.store.GetKey(ctx, id)
		if err != nil {
			return fmt.Errorf("key store: %w", err) // ours, not the peer's: not an *Error
		}
		if sk != nil && sk.Owner != "" && sk.Owner != actor.ID {
			return newErr(KindWrongOwner, host, nil, "key %s is bound to %s, not %s", id, sk.Owner, actor.ID)
		}
		if pem != "" {
			if _, err := ParsePublicKeyPEM(pem); err != nil {
				return withHost(err, host)
			}
		} else if _, err := DecodeMultibaseKey(multibase); err != nil {
			return withHost(err, host)
		}
		keys = append(keys, &StoredKey{KeyID: id, Owner: actor.ID, PEM: pem, Multibase: multibase, FetchedAt: now, ExpiresAt: now.Add(kc.cfg.TTL)})
		return nil
	}
	for _, k := range actor.PublicKey {
		if k.PublicKeyPem != "" && k.Owner == actor.ID {
			if err := add(k.ID, k.PublicKeyPem, ""); err != nil {
				return 0, err
			}
		}
	}
	for _, k := range actor.AssertionMethod {
		if k.PublicKeyMultibase != "" && k.Controller == actor.ID {
			if err := add(k.ID, "", k.PublicKeyMultibase); err != nil {
				return 0, err
			}
		}
	}
	for _, k := range keys {
		if err := kc.store.PutKey(ctx, k); err != nil {
			return 0, fmt.Errorf("key store: %w", err)
		}
	}
	return len(keys), nil
}

// keyFromActor extracts keyID from an actor document whose owner/controller is the actor.
func keyFromActor(actor *Object, keyID string) (*StoredKey, bool, error) {
	host := hostOf(keyID)
	if k, ok := actor.PublicKey.Find(keyID); ok && k.PublicKeyPem != "" {
		if k.Owner != actor.ID || actor.ID == "" {
			return nil, true, newErr(KindWrongOwner, host, nil, "key %s has owner %q, actor is %q", keyID, k.Owner, actor.ID)
		}
		if _, err := ParsePublicKeyPEM(k.PublicKeyPem); err != nil {
			return nil, true, withHost(err, host)
		}
		return &StoredKey{KeyID: keyID, Owner: actor.ID, PEM: k.PublicKeyPem}, true, nil
	}
	if k, ok := actor.AssertionMethod.Find(keyID); ok && k.PublicKeyMultibase != "" {
		if k.Controller != actor.ID || actor.ID == "" {
			return nil, true, newErr(KindWrongOwner, host, nil, "key %s has controller %q, actor is %q", keyID, k.Controller, actor.ID)
		}
		if _, err := DecodeMultibaseKey(k.PublicKeyMultibase); err != nil {
			return nil, true, withHost(err, host)
		}
		return &StoredKey{KeyID: keyID, Owner: actor.ID, Multibase: k.PublicKeyMultibase}, true, nil
	}
	return nil, false, nil
}

// asKeyError maps a fetch failure to what an inbox answers: a key that cannot be fetched
// or read is an unknown key (401); refused targets (403), foreign owners (401) and
// oversized documents (413) keep their kind.
func asKeyError(err error, host, keyID string) error {
	var e *Error
	if errors.As(err, &e) {
		switch e.Kind {
		case KindForbidden, KindWrongOwner, KindTooLarge, KindUnknownKey:
			return withHost(err, host)
		}
	}
	return newErr(KindUnknownKey, host, err, "cannot fetch key %s", keyID)
}

// CachedOnly resolves keys from what the cache holds, never fetching: for the actor
// document under authorized fetch, where verifying a signed GET by fetching the
// signer's actor could loop (the peer, strict too, verifies our signed key fetch by
// fetching our actor...). A miss is KindUnknownKey; OnMiss, when set, is told the key id
// so that the caller can fetch it in the background for the next request.
type CachedOnly struct {
	Cache  *KeyCache
	OnMiss func(keyID string)
}

// ResolveKey implements KeyResolver from the cache alone (refresh is ignored).
func (c CachedOnly) ResolveKey(ctx context.Context, keyID string, _ bool) (*RemoteKey, error) {
	host := hostOf(keyID)
	sk, err := c.Cache.store.GetKey(ctx, keyID)
	if err != nil {
		return nil, newErr(KindUnknownKey, host, err, "key store")
	}
	if sk == nil || sk.Negative || !c.Cache.now().Before(sk.ExpiresAt) {
		if c.OnMiss != nil {
			c.OnMiss(keyID)
		}
		return nil, newErr(KindUnknownKey, host, nil, "key %s is not cached", keyID)
	}
	return c.Cache.parsed(sk)
}
