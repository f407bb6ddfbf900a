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

	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/keys"
)

// forkPeer is instance B of a cross-instance merge request, written in Go on 127.0.0.7:
// Repository actors (R_B) whose documents carry the cloneUri of Alice's fork on a real
// Gitea, that sign the Offers and Pushes they send, and an inbox that keeps only what
// verifies against alpha's published keys.
type forkPeer struct {
	host, addr string
	key        *rsa.PrivateKey
	pem        string
	clones     map[string]string // repository name -> cloneUri
	verifier   *activitypub.Verifier
	mu         sync.Mutex
	got        []map[string]any
	unverified []string
}

func newForkPeer(t *testing.T, clones map[string]string) *forkPeer {
	ln, err := net.Listen("tcp", "127.0.0.7:0")
	must(t, err)
	k, err := keys.Generate()
	must(t, err)
	pem, err := keys.EncodePublic(k.RSA.Public())
	must(t, err)
	fp := &forkPeer{host: "forge-b.peer.test", addr: ln.Addr().String(), key: k.RSA, pem: string(pem), clones: clones}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /repos/{name}", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		clone, ok := fp.clones[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		id := fp.actor(name)
		w.Header().Set("Content-Type", "application/activity+json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"@context": []string{activitypub.ActivityStreamsContext, activitypub.SecurityContext, activitypub.ForgeFedContext},
			"id":       id, "type": "Repository", "preferredUsername": name, "name": "Alice's " + name,
			"inbox": id + "/inbox", "cloneUri": clone,
			// One key for every repository: the key id names the actor, as Fedforge's do.
			"publicKey": map[string]string{"id": id + "#main-key", "owner": id, "publicKeyPem": fp.pem},
		})
	})
	mux.HandleFunc("POST /repos/{name}/inbox", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		fp.mu.Lock()
		verifier := fp.verifier
		fp.mu.Unlock()
		v, err := verifier.VerifyRequest(r.Context(), r, body)
		var doc map[string]any
		_ = json.Unmarshal(body, &doc)
		fp.mu.Lock()
		defer fp.mu.Unlock()
		if err != nil || v.CheckActor(fmt.Sprint(doc["actor"])) != nil {
			fp.unverified = append(fp.unverified, fmt.Sprintf("%v: %s", err, body))
			http.Error(w, "signature", http.StatusUnauthorized)
			return
		}
		fp.got = append(fp.got, doc)
		w.WriteHeader(http.StatusAccepted)
	})
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return fp
}

// attach makes the peer verify signatures with keys fetched from alpha.
func (fp *forkPeer) attach(alphaListen string) {
	guard := activitypub.NewClient(activitypub.ClientConfig{AllowHTTP: true, AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		Resolve: map[string]string{alphaHost: alphaListen}})
	v := activitypub.NewVerifier(activitypub.NewKeyCache(guard, nil, activitypub.KeyCacheConfig{}), 1000)
	v.Origin = func(context.Context) (*url.URL, error) { return url.Parse("http://" + fp.host) }
	fp.mu.Lock()
	fp.verifier = v
	fp.mu.Unlock()
}

func (fp *forkPeer) actor(name string) string { return "http://" + fp.host + "/repos/" + name }

// answers returns the verified activities of a type whose object is objectID.
func (fp *forkPeer) answers(typ, objectID string) []map[string]any {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	var out []map[string]any
	for _, d := range fp.got {
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

// send signs doc as repository name and POSTs it to alpha's shared inbox.
func (fp *forkPeer) send(t *testing.T, p *pair, name string, doc map[string]any) (int, string) {
	t.Helper()
	body, err := json.Marshal(doc)
	must(t, err)
	return post(t, p.alpha, "/inbox", body, "application/activity+json", func(r *http.Request) {
		must(t, activitypub.SignCavage(r, body, fp.key, fp.actor(name)+"#main-key", activitypub.CavageOptions{}))
	})
}

// offer is R_B's Offer of a merge request from branch ref of repository name to target,
// as docs/merge-requests.md writes it.
func (fp *forkPeer) offer(id, name, target, title, ref string) map[string]any {
	actor := fp.actor(name)
	return map[string]any{
		"@context": []string{activitypub.ActivityStreamsContext, activitypub.ForgeFedContext},
		"id":       id, "type": "Offer", "actor": actor, "to": []string{target}, "target": target,
		"object": map[string]any{"id": id + "#ticket", "type": "Ticket", "attributedTo": actor, "summary": title,
			"content": "<p>Please merge <code>" + ref + "</code>.</p>", "source": map[string]any{"mediaType": "text/markdown", "content": "Please merge `" + ref + "`."},
			"attachment": map[string]any{"type": "Offer",
				"origin": map[string]any{"type": "Branch", "context": actor, "ref": ref},
				"target": map[string]any{"type": "Branch", "context": target, "name": "main", "ref": "refs/heads/main"}}},
	}
}

// push is R_B's ForgeFed Push of commits to branch ref of repository name.
func (fp *forkPeer) push(id, name, target, ref, before, after string) map[string]any {
	actor := fp.actor(name)
	return map[string]any{
		"@context": []string{activitypub.ActivityStreamsContext, activitypub.ForgeFedContext},
		"id":       id, "type": "Push", "actor": actor, "to": []string{target, actor + "/followers"}, "attributedTo": actor,
		"context": actor, "target": map[string]any{"type": "Branch", "context": actor, "ref": ref},
		"hashBefore": before, "hashAfter": after,
		"object": map[string]any{"type": "OrderedCollection", "totalItems": 1,
			"orderedItems": []any{map[string]any{"type": "Commit", "hash": after, "context": actor}}},
	}
}
