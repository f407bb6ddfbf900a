package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/fedforge/fedforge/internal/delivery"
	"github.com/fedforge/fedforge/internal/lookup"
)

// lookupTimeout bounds one lookup (WebFinger and one or two document fetches, each
// bounded by the client's own timeouts).
const lookupTimeout = 20 * time.Second

// errLookupDenied says a FederationPolicy refuses the host a lookup would reach.
var errLookupDenied = errors.New("refused by a FederationPolicy")

// lookupAs resolves target (a URL or a handle) with internal/lookup, signed as la so that
// authorized-fetch peers show the whole document, after the FederationPolicies allowed
// both the host asked and the host the document is on. An actor found is kept in the
// remote actor cache and its keys in the key cache, so a follow or a signed request
// that comes next needs no second fetch.
func (f *federation) lookupAs(ctx context.Context, la *localActor, target string) (*lookup.Result, error) {
	t, err := lookup.Parse(target)
	if err != nil {
		return nil, err
	}
	host := t.Host
	if !t.IsHandle() {
		host = delivery.HostOf(t.URL)
	}
	if err := f.lookupAllowed(ctx, host); err != nil {
		return nil, err
	}
	signer, err := f.actors.signerFor(ctx, la)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	if t.IsHandle() {
		// Check where the handle points before fetching there.
		id, err := lookup.ID(ctx, f.client, t)
		if err != nil {
			return nil, err
		}
		if err := f.lookupAllowed(ctx, delivery.HostOf(id)); err != nil {
			return nil, err
		}
		target = id
	}
	res, err := lookup.Resolve(ctx, f.client, target, signer)
	if err != nil {
		return nil, err
	}
	res.Target = t.String()
	if res.Actor {
		if _, err := f.cacheActor(ctx, res.Object); err != nil {
			return nil, err
		}
		if _, err := f.keyCache.PutActorKeys(ctx, res.Object); err != nil {
			f.log.V(1).Info("keys of a looked-up actor not cached", "actor", res.ID, "error", err.Error())
		}
	}
	return res, nil
}

// lookupAllowed refuses a host a FederationPolicy refuses.
func (f *federation) lookupAllowed(ctx context.Context, host string) error {
	v, err := f.policies.evaluate(ctx, host)
	if err != nil {
		return err
	}
	if !v.allowed {
		return fmt.Errorf("%s: %w (%s)", host, errLookupDenied, strings.Join(v.by, ", "))
	}
	return nil
}

// lookupEndpoint serves GET /actors/{username}/lookup?resource=<url|handle> to the
// actor's owner (the bearer token of the actor's client-to-server outbox, as its inbox
// read): the document at the URL, or of the actor the handle names, fetched signed as
// the actor and verified (served from its own id), with its type and whether it is an
// actor one can follow. Errors are JSON {"error": ...} with the status lookup.Status
// gives (400 for what the network guard refuses: nothing is fetched), 403 for a host a
// FederationPolicy refuses.
func (f *federation) lookupEndpoint(secrets *secretCache) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		la, ok := f.collectionActor(w, r)
		if !ok {
			return
		}
		if !f.ownerToken(r, la, secrets) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="fedforge lookup"`)
			http.Error(w, "lookups are for the actor's owner: send the outbox token as a bearer token", http.StatusUnauthorized)
			return
		}
		target := r.URL.Query().Get("resource")
		res, err := f.lookupAs(r.Context(), la, target)
		if err != nil {
			status := lookup.Status(err)
			if errors.Is(err, errLookupDenied) {
				status = http.StatusForbidden
			}
			f.log.Info("lookup failed", "actor", la.obj.Name, "host", lookupHost(target), "status", status, "error", err.Error())
			writeJSON(w, status, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, res)
	}
}

// lookupHost is the host a lookup target names, for logs ("" when unparsable).
func lookupHost(target string) string {
	t, err := lookup.Parse(target)
	if err != nil {
		return ""
	}
	if t.IsHandle() {
		return t.Host
	}
	return delivery.HostOf(t.URL)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encoding failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "private, no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}
