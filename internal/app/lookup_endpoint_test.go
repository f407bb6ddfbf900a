package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
)

const strictHost = "strict.peer.test"

// strictPeer is a remote server in authorized-fetch mode on 127.0.0.6, written in Go: its
// actor document is served only to a GET whose signature verifies against the signer's
// published key (401 otherwise, as Mastodon's secure mode answers), beside a Note, an
// oversized document and WebFinger, all public.
type strictPeer struct {
	addr     string
	verifier *activitypub.Verifier
	mu       sync.Mutex
	signers  []string // keyIds of verified fetches of the actor
}

func startStrictPeer(t *testing.T) *strictPeer {
	ln, err := net.Listen("tcp", "127.0.0.6:0")
	must(t, err)
	sp := &strictPeer{addr: ln.Addr().String()}
	base := "http://" + strictHost
	as2 := func(w http.ResponseWriter, doc any) {
		w.Header().Set("Content-Type", "application/activity+json")
		_ = json.NewEncoder(w).Encode(doc)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/webfinger", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("resource") != "acct:ada@"+strictHost {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/jrd+json")
		fmt.Fprintf(w, `{"subject":"acct:ada@%s","links":[{"rel":"self","type":"application/activity+json","href":"%s/users/ada"}]}`, strictHost, base)
	})
	mux.HandleFunc("GET /users/ada", func(w http.ResponseWriter, r *http.Request) {
		sp.mu.Lock()
		verifier := sp.verifier
		sp.mu.Unlock()
		v, err := verifier.VerifyRequest(r.Context(), r, nil)
		if err != nil {
			http.Error(w, "signed fetches only", http.StatusUnauthorized)
			return
		}
		sp.mu.Lock()
		sp.signers = append(sp.signers, v.KeyID)
		sp.mu.Unlock()
		as2(w, map[string]any{"@context": activitypub.ActivityStreamsContext, "id": base + "/users/ada", "type": "Person",
			"preferredUsername": "ada", "name": "Ada", "inbox": base + "/users/ada/inbox"})
	})
	mux.HandleFunc("GET /notes/1", func(w http.ResponseWriter, r *http.Request) {
		as2(w, map[string]any{"@context": activitypub.ActivityStreamsContext, "id": base + "/notes/1", "type": "Note",
			"attributedTo": base + "/users/ada", "content": "a release note"})
	})
	mux.HandleFunc("GET /big", func(w http.ResponseWriter, r *http.Request) {
		as2(w, map[string]any{"@context": activitypub.ActivityStreamsContext, "id": base + "/big", "type": "Note",
			"content": strings.Repeat("a", activitypub.MaxDocumentBytes)})
	})
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return sp
}

// attach makes the peer verify signed fetches with keys fetched from alpha.
func (sp *strictPeer) attach(alphaListen string) {
	guard := activitypub.NewClient(activitypub.ClientConfig{AllowHTTP: true, AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		Resolve: map[string]string{alphaHost: alphaListen}})
	v := &activitypub.Verifier{Keys: activitypub.NewKeyCache(guard, nil, activitypub.KeyCacheConfig{})}
	v.Origin = func(context.Context) (*url.URL, error) { return url.Parse("http://" + strictHost) }
	sp.mu.Lock()
	sp.verifier = v
	sp.mu.Unlock()
}

// lookupVia calls alpha's lookup endpoint of actor "finder" with token.
func lookupVia(t *testing.T, p *pair, token, resource string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+p.alpha.listen+"/actors/finder/lookup?resource="+url.QueryEscape(resource), nil)
	must(t, err)
	req.Host = alphaHost
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(body), &out); err != nil {
		out = map[string]any{"text": string(body)}
	}
	return resp.StatusCode, out
}

// TestLookupEndpoint looks remote documents up through alpha's authenticated lookup
// endpoint, against a strict (authorized-fetch) Go peer: an actor by handle, fetched
// signed as the local actor (the peer refuses unsigned fetches); a Note shown with its
// type and author; an oversized document, a refused address and bad input refused with a
// clear error; no token, 401. Then a Subscription whose remoteActor is the Note gets
// Accepted False with reason NotAnActor instead of a Follow.
func TestLookupEndpoint(t *testing.T) {
	t.Parallel()
	sp := startStrictPeer(t)
	p := newPair(t, strictHost+"="+sp.addr)
	sp.attach(p.alpha.listen)
	ctx := context.Background()
	p.actor(t, p.alpha, "finder", "finder", false)
	const token = "finder-owner-token"
	must(t, p.k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "alpha", Name: "finder-outbox-token"},
		StringData: map[string]string{"token": token}}))
	ada := "http://" + strictHost + "/users/ada"

	// A Subscription to something that is not an actor says so, and sends no Follow.
	p.follow(t, p.alpha, "follow-a-note", "finder", "http://"+strictHost+"/notes/1")
	eventually(t, 30*time.Second, func() error {
		var s fedv1.Subscription
		if err := p.k8s.Get(ctx, types.NamespacedName{Namespace: "alpha", Name: "follow-a-note"}, &s); err != nil {
			return err
		}
		c := meta.FindStatusCondition(s.Status.Conditions, fedv1.ConditionAccepted)
		if c == nil || c.Reason != fedv1.ReasonNotAnActor || c.Status != metav1.ConditionFalse {
			return fmt.Errorf("Accepted = %+v, want False %s", c, fedv1.ReasonNotAnActor)
		}
		if !strings.Contains(c.Message, "is a Note, not an actor; its author is "+ada) {
			return fmt.Errorf("message %q", c.Message)
		}
		if s.Status.FollowActivityID != "" {
			return fmt.Errorf("a Follow was sent to a Note: %s", s.Status.FollowActivityID)
		}
		if r := meta.FindStatusCondition(s.Status.Conditions, fedv1.ConditionReady); r == nil || r.Reason != fedv1.ReasonNotAnActor {
			return fmt.Errorf("Ready = %+v, want the reason %s repeated", r, fedv1.ReasonNotAnActor)
		}
		return nil
	})

	if code, _ := lookupVia(t, p, "", ada); code != http.StatusUnauthorized {
		t.Errorf("lookup without a token: %d, want 401", code)
	}
	if code, _ := lookupVia(t, p, "not-the-token", ada); code != http.StatusUnauthorized {
		t.Errorf("lookup with a wrong token: %d, want 401", code)
	}

	code, res := lookupVia(t, p, token, "@ada@"+strictHost)
	if code != http.StatusOK || res["actor"] != true || res["id"] != ada {
		t.Fatalf("lookup of a strict peer's actor by handle: %d %v", code, res)
	}
	if doc, _ := res["document"].(map[string]any); doc["name"] != "Ada" {
		t.Errorf("document = %v", res["document"])
	}
	sp.mu.Lock()
	signers := append([]string(nil), sp.signers...)
	sp.mu.Unlock()
	if want := p.alpha.base() + "/actors/finder"; len(signers) != 1 || !strings.HasPrefix(signers[0], want+"#") {
		t.Errorf("verified signed fetches of ada: %v, want one by %s", signers, want)
	}

	code, res = lookupVia(t, p, token, "http://"+strictHost+"/notes/1")
	if code != http.StatusOK || res["actor"] != false || res["attributedTo"] != ada || fmt.Sprint(res["type"]) != "[Note]" {
		t.Errorf("lookup of a Note: %d %v", code, res)
	}

	refusals := map[string]struct {
		resource string
		status   int
		says     string
	}{
		"oversized document":  {"http://" + strictHost + "/big", http.StatusBadGateway, "over 1048576 bytes"},
		"refused address":     {"http://10.1.2.3/users/x", http.StatusBadRequest, "refused by the network guard"},
		"metadata address":    {"http://169.254.169.254/latest/meta-data", http.StatusBadRequest, "refused by the network guard"},
		"not a URL or handle": {"ftp://" + strictHost + "/x", http.StatusBadRequest, "handle"},
		"empty":               {"", http.StatusBadRequest, "handle"},
		"unknown account":     {"nobody@" + strictHost, http.StatusNotFound, "WebFinger of nobody@" + strictHost},
	}
	for name, tc := range refusals {
		t.Run(name, func(t *testing.T) {
			code, res := lookupVia(t, p, token, tc.resource)
			if code != tc.status || !strings.Contains(fmt.Sprint(res["error"]), tc.says) {
				t.Errorf("lookup of %q: %d %v, want %d saying %q", tc.resource, code, res, tc.status, tc.says)
			}
		})
	}

}
