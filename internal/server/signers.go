package server

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/keys"
	"github.com/fedforge/fedforge/internal/urls"
)

// cachedSigner is a parsed key Secret, reused until the Secret changes.
type cachedSigner struct {
	resourceVersion string
	signer          *activitypub.Signer
}

// Signer returns the signer of a local actor by its ID, from its key Secret in the
// cache; the delivery executor calls it for every leased row.
func (ac *actors) Signer(ctx context.Context, actorID string) (*activitypub.Signer, error) {
	if id, ok := strings.CutSuffix(actorID, previousKeySuffix); ok {
		la, err := ac.byIRI(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("previous-key signer for %s: %w", id, err)
		}
		return ac.previousSigner(ctx, la)
	}
	la, err := ac.byIRI(ctx, actorID)
	if errors.Is(err, errNotLocal) {
		// An actor being deleted is no longer served, but still signs its farewell
		// Delete until its finalizer is removed.
		la, err = ac.deleting(ctx, actorID)
	}
	if err != nil {
		return nil, fmt.Errorf("signer for %s: %w", actorID, err)
	}
	return ac.signerFor(ctx, la)
}

// previousKeySuffix marks an activity to be signed with the actor's previous key (its
// store ActorID is <actor>#previous-key): the Update announcing rotated keys.
const previousKeySuffix = "#previous-key"

// previousSigner signs with the keys before the last rotation, under the same keyIds, so
// peers holding an old key verify (the RSA one, or the Ed25519 one for hosts whose
// profile is RFC 9421 Ed25519); errNoKeys when the overlap has ended.
func (ac *actors) previousSigner(ctx context.Context, la *localActor) (*activitypub.Signer, error) {
	var s corev1.Secret
	if err := ac.reader.Get(ctx, types.NamespacedName{Namespace: la.obj.Namespace, Name: la.obj.Status.KeySecretName}, &s); err != nil {
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
	sg := &activitypub.Signer{KeyID: la.urls.RSAKeyID(), Key: k, Now: ac.now}
	// Secrets rotated before the previous Ed25519 key was kept have only the RSA one; the
	// client then signs RFC 9421 Ed25519 hosts with the old RSA key.
	if b := s.Data[keys.PreviousEd25519PrivateKey]; len(b) > 0 {
		if ek, err := activitypub.ParsePrivateKeyPEM(b); err == nil {
			sg.Ed25519, sg.Ed25519KeyID = ek, la.urls.Ed25519KeyID()
		}
	}
	return sg, nil
}

// signerFor parses the actor's current keys from its Secret, once per Secret version.
func (ac *actors) signerFor(ctx context.Context, la *localActor) (*activitypub.Signer, error) {
	name := la.obj.Status.KeySecretName
	if name == "" {
		return nil, errNoKeys
	}
	var s corev1.Secret
	if err := ac.reader.Get(ctx, types.NamespacedName{Namespace: la.obj.Namespace, Name: name}, &s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, errNoKeys
		}
		return nil, err
	}
	ac.mu.Lock()
	c, ok := ac.signers[s.UID]
	ac.mu.Unlock()
	if ok && c.resourceVersion == s.ResourceVersion && c.signer.KeyID == la.urls.RSAKeyID() {
		return c.signer, nil
	}
	pair, err := keys.FromData(s.Data)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errNoKeys, err)
	}
	// The RSA key signs cavage and RFC 9421 rsa-v1_5-sha256; the Ed25519 key signs RFC
	// 9421 ed25519 for hosts whose signature profile asks for it (the client chooses).
	sg := &activitypub.Signer{KeyID: la.urls.RSAKeyID(), Key: pair.RSA, Ed25519: pair.Ed25519, Ed25519KeyID: la.urls.Ed25519KeyID(), Now: ac.now}
	ac.mu.Lock()
	if ac.signers == nil {
		ac.signers = map[types.UID]cachedSigner{}
	}
	ac.signers[s.UID] = cachedSigner{resourceVersion: s.ResourceVersion, signer: sg}
	ac.mu.Unlock()
	return sg, nil
}

// anySigner returns the signer of some served actor with keys, for fetches that are not
// on behalf of one actor (key lookups of authorized-fetch peers). nil when none has keys.
func (ac *actors) anySigner(ctx context.Context) *activitypub.Signer {
	all, err := ac.list(ctx, indexActorServer, ac.srv.Name)
	if err != nil {
		return nil
	}
	base, _, err := ac.baseURL(ctx)
	if err != nil {
		return nil
	}
	for i := range all {
		la := &localActor{obj: &all[i], urls: urls.ForActor(base, all[i].Spec.PreferredUsername)}
		if s, err := ac.signerFor(ctx, la); err == nil {
			return s
		}
	}
	return nil
}

// errNoKeys means an actor's key Secret is not written yet.
var errNoKeys = errors.New("server: actor keys not ready")

// publicKeys reads the actor's current public keys from its key Secret (in the cache,
// which holds only Secrets Fedforge manages). A missing Secret or missing keys are
// errNoKeys: the key controller has not written them yet.
func (ac *actors) publicKeys(ctx context.Context, a *fedv1.FederatedActor) (string, ed25519.PublicKey, error) {
	name := a.Status.KeySecretName
	if name == "" {
		return "", nil, errNoKeys
	}
	var s corev1.Secret
	if err := ac.reader.Get(ctx, types.NamespacedName{Namespace: a.Namespace, Name: name}, &s); err != nil {
		if apierrors.IsNotFound(err) {
			return "", nil, errNoKeys
		}
		return "", nil, err
	}
	rsaPEM := s.Data[keys.RSAPublicKey]
	if len(rsaPEM) == 0 {
		return "", nil, errNoKeys
	}
	if _, err := keys.ParsePublic(rsaPEM); err != nil {
		return "", nil, errNoKeys
	}
	var edKey ed25519.PublicKey
	if b := s.Data[keys.Ed25519PublicKey]; len(b) > 0 {
		if k, err := keys.ParsePublic(b); err == nil {
			edKey, _ = k.(ed25519.PublicKey)
		}
	}
	return string(rsaPEM), edKey, nil
}
