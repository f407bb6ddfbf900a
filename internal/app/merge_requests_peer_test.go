package app

import (
	"crypto/rsa"
	"encoding/json"
	"net"
	"net/http"
	"testing"

	"github.com/fedforge/fedforge/internal/activitypub"
)

// forkPeer is instance B of a cross-instance merge request, written in Go on 127.0.0.7:
// Repository actors (R_B) whose documents carry the cloneUri of Alice's fork on a real
// Gitea, that sign the Offers and Pushes they send, and a verifyingInbox.
type forkPeer struct {
	verifyingInbox
	host, addr string
	key        *rsa.PrivateKey
	pem        string
	clones     map[string]string // repository name -> cloneUri
}

func newForkPeer(t *testing.T, clones map[string]string) *forkPeer {
	ln, err := net.Listen("tcp", "127.0.0.7:0")
	must(t, err)
	fp := &forkPeer{host: "forge-b.peer.test", addr: ln.Addr().String(), clones: clones}
	fp.origin = "http://" + fp.host
	fp.key, fp.pem = peerKey(t)
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
	mux.HandleFunc("POST /repos/{name}/inbox", fp.serveInbox)
	servePeer(t, ln, mux)
	return fp
}

func (fp *forkPeer) actor(name string) string { return "http://" + fp.host + "/repos/" + name }

// send signs doc as repository name and POSTs it to alpha's shared inbox.
func (fp *forkPeer) send(t *testing.T, p *pair, name string, doc map[string]any) (int, string) {
	t.Helper()
	return sendSigned(t, p, fp.key, fp.actor(name)+"#main-key", doc)
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
