package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/urls"
)

// signedFetch enforces spec.authorizedFetch ("secure mode") on a GET route: the request
// must carry a signature that verifies against the signer's published key, from a host
// the server's policies allow (403 otherwise, so a blocked instance cannot read what it
// may not receive). Unsigned or unverifiable requests get 401 with Accept-Signature for a
// GET. keyStub marks the actor document route: an unsigned AS2 request there is served
// the key stub (id, type, preferredUsername, inbox, shared inbox, keys) that a peer needs
// to verify our signatures and to deliver to us, since a peer fetching our key to check
// our first signed request cannot sign that fetch with a key we do not know yet (that is
// why Mastodon and GoToSocial serve a stub too). A browser (HTML) is served as before.
// A signed GET of the actor document is verified only against keys already cached
// (activitypub.CachedOnly): fetching the signer's key there could loop between two
// strict servers, each verifying the other's signed key fetch by another signed fetch.
// On a miss the stub is served and the key is fetched in the background, so the peer's
// next fetch gets the full document. Without authorizedFetch the route is unchanged.
func (f *federation) signedFetch(next http.HandlerFunc, keyStub bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		fs, err := f.actors.server(r.Context())
		if err != nil || !fs.Spec.AuthorizedFetch || (keyStub && !wantsActivity(r.Header.Get("Accept"))) {
			next(w, r)
			return
		}
		w.Header().Add("Vary", "Signature, Signature-Input")
		signed := r.Header.Get("Signature") != "" || r.Header.Get("Signature-Input") != "" || r.Header.Get("Authorization") != ""
		if !signed && keyStub {
			f.serveKeyStub(w, r, fs)
			return
		}
		verifier := f.fetchVerifier
		if keyStub {
			verifier = f.actorFetchVerifier
		}
		v, err := verifier.VerifyRequest(r.Context(), r, nil)
		if err != nil && keyStub {
			// The signer's key is not cached (or the signature is bad): the stub, which
			// is what a peer fetching our key needs; its key is fetched meanwhile.
			f.serveKeyStub(w, r, fs)
			return
		}
		if err != nil {
			status := activitypub.StatusOf(err)
			if status < 400 || status >= 500 {
				status = http.StatusUnauthorized
			}
			f.log.Info("authorized fetch refused a GET", "path", r.URL.Path, "remote", remoteIP(r), "host", claimedHost(r), "status", status, "reason", err.Error())
			if status == http.StatusUnauthorized {
				w.Header().Set("Accept-Signature", activitypub.AcceptSignatureFetch())
			}
			http.Error(w, "a valid HTTP signature is required (authorized fetch)", status)
			return
		}
		host := hostOfIRI(v.Owner)
		verdict, err := f.policies.evaluate(r.Context(), host)
		if err != nil {
			http.Error(w, "policy unavailable", http.StatusInternalServerError)
			return
		}
		if !verdict.allowed {
			f.refused.add(refusedRequest, f.now(), verdict.by...)
			f.log.Info("authorized fetch refused a blocked host", "path", r.URL.Path, "host", host)
			http.Error(w, host+" is not allowed to federate with this server", http.StatusForbidden)
			return
		}
		next(w, r)
	}
}

// serveKeyStub answers an unsigned AS2 GET of an actor under authorized fetch.
func (f *federation) serveKeyStub(w http.ResponseWriter, r *http.Request, fs *fedv1.FederationServer) {
	a, err := f.actors.byUsername(r.Context(), r.PathValue("username"), false)
	if err != nil {
		http.Error(w, "lookup failed", http.StatusInternalServerError)
		return
	}
	if a == nil {
		notFound(w, true)
		return
	}
	rsaPEM, edKey, err := f.actors.publicKeys(r.Context(), a)
	if errors.Is(err, errNoKeys) {
		w.Header().Set("Retry-After", retryAfterSeconds)
		http.Error(w, "actor keys not ready", http.StatusServiceUnavailable)
		return
	} else if err != nil {
		http.Error(w, "actor unavailable", http.StatusInternalServerError)
		return
	}
	base := fs.BaseURL()
	u := urls.ForActor(base, a.Spec.PreferredUsername)
	kind := string(a.Spec.Type)
	if kind == "" {
		kind = string(fedv1.ActorService)
	}
	doc := activitypub.NewActor(activitypub.ActorSpec{
		ID: u.ID, Types: activitypub.FollowableTypes(kind), PreferredUsername: a.Spec.PreferredUsername,
		Inbox: u.Inbox(), SharedInbox: urls.SharedInbox(base), RSAPublicKeyPEM: rsaPEM, Ed25519PublicKey: edKey,
	})
	body, err := json.Marshal(doc)
	if err != nil {
		http.Error(w, "encoding failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentTypeActivity)
	w.Header().Set("Cache-Control", "private")
	_, _ = w.Write(body)
}

// hostOfIRI is the host[:port] of an IRI, lower-cased, as policies and the inbox name it.
func hostOfIRI(iri string) string {
	u, err := url.Parse(iri)
	if err != nil {
		return ""
	}
	return strings.ToLower(u.Host)
}

// fetchKeyLater resolves a signer's key in the background (bounded by keyFetchSlots, so
// a flood of unknown key ids cannot start unbounded fetches), for the next signed GET.
func (f *federation) fetchKeyLater(keyID string) {
	select {
	case keyFetchSlots <- struct{}{}:
	default:
		return
	}
	go func() {
		defer func() { <-keyFetchSlots }()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := f.keyCache.ResolveKey(ctx, keyID, false); err != nil {
			f.log.V(1).Info("background key fetch failed", "keyId", keyID, "error", err.Error())
		}
	}()
}

// keyFetchSlots bounds background key fetches of the actor route.
var keyFetchSlots = make(chan struct{}, 8)
