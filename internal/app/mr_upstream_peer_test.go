package app

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/keys"
)

// upstreamPeer plays instance A of issue 14 in Go, on its own loopback address: a
// Repository actor "project" (R_A) that serves its document with its key, signs what
// the test sends as it, and an inbox that keeps every POST whose signature verifies
// against the sender's published key (fetched from alpha, as a real peer does), each with
// the time it arrived.
type upstreamPeer struct {
	base     string
	key      *rsa.PrivateKey
	pem      string
	verifier *activitypub.Verifier
	mu       sync.Mutex
	cloneURI string // the cloneUri R_A's document shows
	got      []peerDelivery
	bad      []string
}

// peerDelivery is one verified activity and when it arrived.
type peerDelivery struct {
	doc map[string]any
	at  time.Time
}

func startUpstreamPeer(t *testing.T) *upstreamPeer {
	t.Helper()
	k, err := keys.Generate()
	must(t, err)
	pem, err := keys.EncodePublic(k.RSA.Public())
	must(t, err)
	ln, err := net.Listen("tcp", "127.0.0.7:0")
	must(t, err)
	up := &upstreamPeer{base: "http://" + ln.Addr().String(), key: k.RSA, pem: string(pem)}
	up.cloneURI = up.base + "/git/bob/project.git"
	mux := http.NewServeMux()
	mux.HandleFunc("GET /actors/project", func(w http.ResponseWriter, r *http.Request) {
		id := up.id()
		up.mu.Lock()
		clone := up.cloneURI
		up.mu.Unlock()
		w.Header().Set("Content-Type", "application/activity+json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"@context": []string{activitypub.ActivityStreamsContext, activitypub.SecurityContext, activitypub.ForgeFedContext},
			"id":       id, "type": "Repository", "preferredUsername": "project", "name": "Bob's project",
			"inbox": id + "/inbox", "cloneUri": clone,
			"publicKey": map[string]string{"id": id + "#main-key", "owner": id, "publicKeyPem": up.pem},
		})
	})
	mux.HandleFunc("POST /actors/project/inbox", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		up.mu.Lock()
		verifier := up.verifier
		up.mu.Unlock()
		var doc map[string]any
		_ = json.Unmarshal(body, &doc)
		v, err := verifier.VerifyRequest(r.Context(), r, body)
		if err == nil {
			err = v.CheckActor(fmt.Sprint(doc["actor"]))
		}
		up.mu.Lock()
		defer up.mu.Unlock()
		if err != nil {
			up.bad = append(up.bad, fmt.Sprintf("%v: %s", err, body))
			http.Error(w, "signature", http.StatusUnauthorized)
			return
		}
		up.got = append(up.got, peerDelivery{doc: doc, at: time.Now()})
		w.WriteHeader(http.StatusAccepted)
	})
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return up
}

func (up *upstreamPeer) id() string { return up.base + "/actors/project" }

// attach makes the peer verify signatures with keys fetched from alpha.
func (up *upstreamPeer) attach(alphaListen string) {
	guard := activitypub.NewClient(activitypub.ClientConfig{AllowHTTP: true, AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		Resolve: map[string]string{alphaHost: alphaListen}})
	v := activitypub.NewVerifier(activitypub.NewKeyCache(guard, nil, activitypub.KeyCacheConfig{}), 1000)
	v.Origin = func(context.Context) (*url.URL, error) { return url.Parse(up.base) }
	up.mu.Lock()
	up.verifier = v
	up.mu.Unlock()
}

// received returns the verified activities that match, in arrival order.
func (up *upstreamPeer) received(match func(map[string]any) bool) []peerDelivery {
	up.mu.Lock()
	defer up.mu.Unlock()
	var out []peerDelivery
	for _, d := range up.got {
		if match(d.doc) {
			out = append(out, d)
		}
	}
	return out
}

// wait waits for a verified activity that matches and returns the first.
func (up *upstreamPeer) wait(t *testing.T, what string, match func(map[string]any) bool) peerDelivery {
	t.Helper()
	var got peerDelivery
	eventually(t, 90*time.Second, func() error {
		if ds := up.received(match); len(ds) > 0 {
			got = ds[0]
			return nil
		}
		up.mu.Lock()
		defer up.mu.Unlock()
		return fmt.Errorf("the upstream peer has not received %s (%d verified, refused: %v)", what, len(up.got), up.bad)
	})
	return got
}

// send signs act as R_A and posts it to alpha's shared inbox.
func (up *upstreamPeer) send(t *testing.T, p *pair, act map[string]any) (int, string) {
	t.Helper()
	body, err := json.Marshal(act)
	must(t, err)
	return post(t, p.alpha, "/inbox", body, "application/activity+json", signer(t, body, up.key, up.id()+"#main-key", time.Now()))
}

// obj returns a field of a document that is one object (or a list of one), or nil.
func obj(d map[string]any, key string) map[string]any {
	v := d[key]
	if l, ok := v.([]any); ok && len(l) == 1 {
		v = l[0]
	}
	m, _ := v.(map[string]any)
	return m
}
