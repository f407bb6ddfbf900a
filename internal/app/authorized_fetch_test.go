package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
)

// get sends a GET to in as a peer would (Host header set), signed by sign when not nil.
func get(t *testing.T, in instance, path, accept string, sign func(*http.Request)) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+in.listen+path, nil)
	must(t, err)
	req.Host = in.host
	req.Header.Set("Accept", accept)
	if sign != nil {
		sign(req)
	}
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// TestAuthorizedFetch runs two real instances in authorized-fetch mode: each is the
// strict peer of the other. Unsigned GETs of collections are refused with 401 and an
// Accept-Signature for a GET, an unsigned actor GET gets the key stub only, signed GETs
// are served, a blocked host's signed GET is refused with 403, and a follow between the
// two works because every fetch either makes is signed.
func TestAuthorizedFetch(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	ctx := context.Background()
	for _, ns := range []string{"alpha", "beta"} {
		var fs fedv1.FederationServer
		must(t, p.k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "forge"}, &fs))
		base := fs.DeepCopy()
		fs.Spec.AuthorizedFetch = true
		// A merge patch of the spec: an Update would race with the status the operator and
		// the server write (StoreReady at start) and fail on a stale resourceVersion.
		must(t, p.k8s.Patch(ctx, &fs, client.MergeFrom(base)))
	}
	p.actor(t, p.alpha, "releases", "releases", false)
	p.actor(t, p.beta, "watcher", "watcher", false)
	as2 := activitypub.AcceptActivity

	// The server reads spec.authorizedFetch from its cache: wait until it applies.
	eventually(t, 30*time.Second, func() error {
		if code, _, _ := get(t, p.alpha, "/actors/releases/outbox", as2, nil); code != http.StatusUnauthorized {
			return fmt.Errorf("unsigned outbox: %d, want 401", code)
		}
		return nil
	})
	for _, path := range []string{"/actors/releases/outbox", "/actors/releases/followers", "/actors/releases/following", "/actors/releases/outbox?page=true"} {
		code, h, _ := get(t, p.alpha, path, as2, nil)
		if code != http.StatusUnauthorized || !strings.Contains(h.Get("Accept-Signature"), `"@target-uri"`) || strings.Contains(h.Get("Accept-Signature"), "content-digest") {
			t.Errorf("unsigned GET %s: %d, Accept-Signature %q; want 401 asking for a GET signature", path, code, h.Get("Accept-Signature"))
		}
	}
	code, _, body := get(t, p.alpha, "/actors/releases", as2, nil)
	var stub map[string]any
	_ = json.Unmarshal(body, &stub)
	if code != http.StatusOK || stub["publicKey"] == nil || stub["inbox"] == nil || stub["outbox"] != nil || stub["followers"] != nil || stub["name"] != nil {
		t.Errorf("unsigned actor GET: %d %s; want the key stub (keys and inbox, no collections or profile)", code, body)
	}
	if code, _, body := get(t, p.alpha, "/actors/releases", "text/html", nil); code != http.StatusOK || !strings.Contains(string(body), "releases") {
		t.Errorf("browser GET of the profile: %d", code)
	}
	if code, _, _ := get(t, p.alpha, "/.well-known/webfinger?resource=acct:releases@"+alphaHost, "application/jrd+json", nil); code != http.StatusOK {
		t.Errorf("WebFinger under authorized fetch: %d, want 200", code)
	}
	if code, _, _ := get(t, p.alpha, "/.well-known/nodeinfo", "application/json", nil); code != http.StatusOK {
		t.Errorf("NodeInfo under authorized fetch: %d, want 200", code)
	}

	// Both directions of a follow: every fetch (actor documents, keys) is signed, and the
	// strict peer verifies it; the Accept reaches the follower.
	p.follow(t, p.beta, "watch-releases", "watcher", "acct:releases@"+alphaHost)
	p.phase(t, "beta", "watch-releases", fedv1.PhaseAccepted)

	betaID := p.beta.base() + "/actors/watcher"
	key := actorKey(t, p, "beta", "watcher")
	signGET := func(r *http.Request) {
		must(t, activitypub.SignCavage(r, nil, key, betaID+"#main-key", activitypub.CavageOptions{}))
	}
	for _, path := range []string{"/actors/releases", "/actors/releases/outbox", "/actors/releases/followers"} {
		code, _, body := get(t, p.alpha, path, as2, signGET)
		if code != http.StatusOK {
			t.Errorf("signed GET %s: %d %s", path, code, body)
		}
	}
	if code, _, body := get(t, p.alpha, "/actors/releases", as2, signGET); code != http.StatusOK || !strings.Contains(string(body), `"outbox"`) {
		t.Errorf("signed actor GET: %d; want the full document", code)
	}
	rfc := func(r *http.Request) {
		must(t, activitypub.SignRFC9421(activitypub.Message{Request: r}, nil, key, activitypub.RFC9421Options{KeyID: betaID + "#main-key", Alg: activitypub.AlgRSAv15SHA256}))
	}
	if code, _, body := get(t, p.alpha, "/actors/releases/followers", as2, func(r *http.Request) {
		r.URL.Host = alphaHost // sign the public URL the peer addresses
		rfc(r)
		r.URL.Host = p.alpha.listen
	}); code != http.StatusOK {
		t.Errorf("RFC 9421 signed GET of followers: %d %s", code, body)
	}

	must(t, p.k8s.Create(ctx, &fedv1.FederationPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: "alpha", Name: "deny-beta"},
		Spec:       fedv1.FederationPolicySpec{TargetRef: fedv1.LocalObjectReference{Name: "forge"}, Mode: fedv1.PolicyDenylist, Hosts: []string{betaHost}},
	}))
	p.enforced(t, "alpha", "deny-beta")
	if code, _, body := get(t, p.alpha, "/actors/releases/outbox", as2, signGET); code != http.StatusForbidden {
		t.Errorf("signed GET from a blocked host: %d %s, want 403", code, body)
	}
}
