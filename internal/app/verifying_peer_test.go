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

// verifyingInbox is the part the Go peers of the app tests (ticketPeer, forkPeer,
// upstreamPeer) share: an inbox that verifies the signature of every POST against the
// sending actor's published key, fetched from alpha as a real peer does, and keeps what
// verified with its arrival time and what did not. Each peer embeds it and serves its
// own actor documents.
type verifyingInbox struct {
	origin     string // scheme and host the peer is reached at, that signatures name
	mu         sync.Mutex
	verifier   *activitypub.Verifier
	got        []map[string]any // verified activities, in arrival order
	at         []time.Time      // when each of got arrived (load_tickets_test.go)
	unverified []string
}

// serveInbox is the POST handler of the peer's inboxes.
func (in *verifyingInbox) serveInbox(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	in.mu.Lock()
	verifier := in.verifier
	in.mu.Unlock()
	var doc map[string]any
	_ = json.Unmarshal(body, &doc)
	v, err := verifier.VerifyRequest(r.Context(), r, body)
	if err == nil {
		err = v.CheckActor(fmt.Sprint(doc["actor"]))
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if err != nil {
		in.unverified = append(in.unverified, fmt.Sprintf("%v: %s", err, body))
		http.Error(w, "signature", http.StatusUnauthorized)
		return
	}
	in.got, in.at = append(in.got, doc), append(in.at, time.Now())
	w.WriteHeader(http.StatusAccepted)
}

// attach makes the peer verify signatures with keys fetched from alpha.
func (in *verifyingInbox) attach(alphaListen string) {
	guard := activitypub.NewClient(activitypub.ClientConfig{AllowHTTP: true, AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		Resolve: map[string]string{alphaHost: alphaListen}})
	v := activitypub.NewVerifier(activitypub.NewKeyCache(guard, nil, activitypub.KeyCacheConfig{}), 1000)
	v.Origin = func(context.Context) (*url.URL, error) { return url.Parse(in.origin) }
	in.mu.Lock()
	in.verifier = v
	in.mu.Unlock()
}

// answers returns the verified activities of a type whose object is objectID.
func (in *verifyingInbox) answers(typ, objectID string) []map[string]any {
	in.mu.Lock()
	defer in.mu.Unlock()
	var out []map[string]any
	for _, d := range in.got {
		obj := d["object"]
		if m, ok := obj.(map[string]any); ok {
			obj = m["id"]
		}
		if d["type"] == typ && obj == objectID {
			out = append(out, d)
		}
	}
	return out
}

// peerKey generates an RSA key for a peer actor and its public PEM.
func peerKey(t *testing.T) (*rsa.PrivateKey, string) {
	t.Helper()
	k, err := keys.Generate()
	must(t, err)
	pem, err := keys.EncodePublic(k.RSA.Public())
	must(t, err)
	return k.RSA, string(pem)
}

// servePeer serves mux on ln until the test ends.
func servePeer(t *testing.T, ln net.Listener, mux http.Handler) {
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
}

// sendSigned signs doc with key under keyID and POSTs it to alpha's shared inbox.
func sendSigned(t *testing.T, p *pair, key *rsa.PrivateKey, keyID string, doc map[string]any) (int, string) {
	t.Helper()
	body, err := json.Marshal(doc)
	must(t, err)
	return post(t, p.alpha, "/inbox", body, "application/activity+json", signer(t, body, key, keyID, time.Now()))
}
