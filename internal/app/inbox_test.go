package app

import (
	"bytes"
	"context"
	"crypto"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/keys"
)

// post sends body to an inbox of in, as a peer would (Host header set), with sign
// adding whatever signature the case wants.
func post(t *testing.T, in instance, path string, body []byte, contentType string, sign func(*http.Request)) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+in.listen+path, bytes.NewReader(body))
	must(t, err)
	req.Host = in.host
	req.Header.Set("Content-Type", contentType)
	if sign != nil {
		sign(req)
	}
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// actorKey reads a real actor's private key from its Secret, so the test signs as that
// actor and the inbox verifies by fetching the actor from its own instance.
func actorKey(t *testing.T, p *pair, ns, actor string) crypto.Signer {
	t.Helper()
	var s corev1.Secret
	must(t, p.k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: actor + "-keys"}, &s))
	pair, err := keys.FromData(s.Data)
	must(t, err)
	return pair.RSA
}

// signer returns a function that signs the request (as built, before the body is
// swapped) with key under keyID at time now.
func signer(t *testing.T, body []byte, key crypto.Signer, keyID string, now time.Time) func(*http.Request) {
	return func(r *http.Request) {
		// Sign for the public URL the peer would use: same path, the instance's host.
		must(t, activitypub.SignCavage(r, body, key, keyID, activitypub.CavageOptions{Now: now}))
	}
}

// TestInboxRefusesHostileRequests sends every kind of bad request in the protocol
// issue's list to a real instance, signed (or not) with a real peer's key, and checks
// the status and that nothing was created.
func TestInboxRefusesHostileRequests(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	ctx := context.Background()
	p.actor(t, p.alpha, "releases", "releases", false)
	p.actor(t, p.beta, "watcher", "watcher", false)
	alphaID := p.alpha.base() + "/actors/releases"
	betaID := p.beta.base() + "/actors/watcher"
	key := actorKey(t, p, "beta", "watcher")
	keyID := betaID + "#main-key"
	follow := func(id string) []byte {
		return []byte(fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","id":%q,"type":"Follow","actor":%q,"object":%q}`, id, betaID, alphaID))
	}
	const ct = "application/activity+json"
	now := time.Now()

	type tc struct {
		body []byte
		ct   string
		sign func(*http.Request)
		path string
		want int
	}
	n := 0
	id := func() string { n++; return fmt.Sprintf("%s/follows/%d", p.beta.base(), n) }
	replayed := follow(id())
	replaySign := signer(t, replayed, key, keyID, now)
	var replayHeaders http.Header
	tests := map[string]tc{
		"unsigned": {body: follow(id()), ct: ct, want: 401},
		"bad signature": {body: follow(id()), ct: ct, want: 401, sign: func(r *http.Request) {
			signer(t, follow("x"), key, keyID, now)(r)
			sig := r.Header.Get("Signature")
			r.Header.Set("Signature", strings.Replace(sig, `signature="`, `signature="AAAA`, 1))
		}},
		"expired signature": {body: follow(id()), ct: ct, want: 401, sign: func(r *http.Request) {
			b := follow(fmt.Sprintf("%s/follows/old", p.beta.base()))
			r.Body = io.NopCloser(bytes.NewReader(b))
			r.ContentLength = int64(len(b))
			signer(t, b, key, keyID, now.Add(-2*time.Hour))(r)
		}},
		"digest mismatch": {body: follow(id()), ct: ct, want: 401, sign: func(r *http.Request) {
			signer(t, follow("https://elsewhere/other"), key, keyID, now)(r)
		}},
		"key of another actor (wrong owner)": {ct: ct, want: 401, body: []byte(fmt.Sprintf(
			`{"id":"%s/x","type":"Follow","actor":"%s/actors/someone-else","object":%q}`, p.beta.base(), p.beta.base(), alphaID))},
		"key on a private address (SSRF)": {body: follow(id()), ct: ct, want: 403, sign: func(r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(b))
			signer(t, b, key, "http://10.0.0.1/actors/x#main-key", now)(r)
		}},
		"oversized":              {body: append(follow(id()), bytes.Repeat([]byte(" "), activitypub.MaxDocumentBytes)...), ct: ct, want: 413},
		"wrong content type":     {body: follow(id()), ct: "text/plain", want: 415},
		"not JSON":               {body: []byte("{not json"), ct: ct, want: 400},
		"id on another host":     {body: []byte(fmt.Sprintf(`{"id":"https://evil.example/1","type":"Follow","actor":%q,"object":%q}`, betaID, alphaID)), ct: ct, want: 400},
		"unknown personal inbox": {body: follow(id()), ct: ct, want: 404, path: "/actors/nobody/inbox"},
	}
	// The wrong-owner case is signed with watcher's key for an activity of another actor.
	wo := tests["key of another actor (wrong owner)"]
	wo.sign = signer(t, wo.body, key, keyID, now)
	tests["key of another actor (wrong owner)"] = wo
	for name, c := range tests {
		t.Run(name, func(t *testing.T) {
			sign := c.sign
			if sign == nil && name != "unsigned" {
				sign = signer(t, c.body, key, keyID, now)
			}
			path := c.path
			if path == "" {
				path = "/inbox"
			}
			got, reason := post(t, p.alpha, path, c.body, c.ct, sign)
			if got != c.want {
				t.Errorf("status %d (%s), want %d", got, reason, c.want)
			}
			if got >= 400 && reason == "" {
				t.Errorf("status %d without a reason", got)
			}
		})
	}

	t.Run("a replayed signature is refused, the original accepted", func(t *testing.T) {
		got, reason := post(t, p.alpha, "/inbox", replayed, ct, func(r *http.Request) { replaySign(r); replayHeaders = r.Header.Clone() })
		if got != http.StatusAccepted {
			t.Fatalf("original: %d %s", got, reason)
		}
		got, _ = post(t, p.alpha, "/inbox", replayed, ct, func(r *http.Request) {
			for k, v := range replayHeaders {
				r.Header[k] = v
			}
		})
		if got != http.StatusUnauthorized {
			t.Errorf("replay: %d, want 401", got)
		}
	})

	t.Run("a denied host gets 403 before anything is fetched", func(t *testing.T) {
		must(t, p.k8s.Create(ctx, &fedv1.FederationPolicy{
			ObjectMeta: metav1.ObjectMeta{Namespace: "alpha", Name: "deny-beta"},
			Spec:       fedv1.FederationPolicySpec{TargetRef: fedv1.LocalObjectReference{Name: "forge"}, Mode: fedv1.PolicyDenylist, Hosts: []string{"*.fedforge.test"}},
		}))
		undo := []byte(fmt.Sprintf(`{"id":"%s/undo/1","type":"Undo","actor":%q,"object":"%s/follows/1"}`, p.beta.base(), betaID, p.beta.base()))
		eventually(t, 10*time.Second, func() error {
			if got, reason := post(t, p.alpha, "/inbox", undo, ct, signer(t, undo, key, keyID, time.Now())); got != http.StatusForbidden {
				return fmt.Errorf("status %d (%s), want 403", got, reason)
			}
			return nil
		})
	})

	t.Run("Delete of an unknown actor is answered 202 without a fetch", func(t *testing.T) {
		ghost := "http://ghost.fedforge.test/actors/gone"
		del := []byte(fmt.Sprintf(`{"id":"%s#delete","type":"Delete","actor":%q,"object":%q}`, ghost, ghost, ghost))
		// Unsigned and unresolvable: a fetch would fail, so 202 proves none was tried.
		if got, reason := post(t, p.alpha, "/inbox", del, ct, nil); got != http.StatusAccepted {
			t.Errorf("status %d (%s), want 202", got, reason)
		}
	})

	// Nothing above created a Subscription on alpha except the one accepted Follow.
	var subs fedv1.SubscriptionList
	must(t, p.k8s.List(ctx, &subs))
	for _, s := range subs.Items {
		if s.Spec.RemoteActor != betaID {
			t.Errorf("a hostile request created Subscription %s for %s", s.Name, s.Spec.RemoteActor)
		}
	}
}
