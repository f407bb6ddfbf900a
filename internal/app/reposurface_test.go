package app

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
)

// loopPeer is a minimal ForgeFed peer on its own loopback address: it serves the actor
// documents a test gives it (each with the peer's one RSA key) and signs what the test
// sends as one of them, so alpha verifies the signature by fetching the actor from it.
type loopPeer struct {
	base string
	key  *rsa.PrivateKey
	pem  string
	mu   sync.Mutex
	docs map[string]map[string]any // path -> document
}

func startLoopPeer(t *testing.T) *loopPeer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	must(t, err)
	pem, err := activitypub.MarshalPublicKeyPEM(&key.PublicKey)
	must(t, err)
	ln, err := net.Listen("tcp", "127.0.0.5:0")
	must(t, err)
	p := &loopPeer{base: "http://" + ln.Addr().String(), key: key, pem: pem, docs: map[string]map[string]any{}}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		doc, ok := p.docs[r.URL.Path]
		p.mu.Unlock()
		if !ok || r.Method != http.MethodGet {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/activity+json")
		_ = json.NewEncoder(w).Encode(doc)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return p
}

// actor serves an actor of the given types at /actors/name, with extra properties, and
// returns its id.
func (p *loopPeer) actor(name string, types []string, extra map[string]any) string {
	id := p.base + "/actors/" + name
	doc := map[string]any{
		"@context":          []any{activitypub.ActivityStreamsContext, activitypub.SecurityContext, activitypub.ForgeFedContext},
		"id":                id,
		"type":              types,
		"preferredUsername": name,
		"inbox":             id + "/inbox",
		"publicKey":         map[string]any{"id": id + "#main-key", "owner": id, "publicKeyPem": p.pem},
	}
	for k, v := range extra {
		doc[k] = v
	}
	p.mu.Lock()
	p.docs["/actors/"+name] = doc
	p.mu.Unlock()
	return id
}

// send posts an activity to alpha's shared inbox, signed as actorID.
func (p *loopPeer) send(t *testing.T, in instance, actorID string, act map[string]any) (int, string) {
	t.Helper()
	body, err := json.Marshal(act)
	must(t, err)
	return post(t, in, "/inbox", body, "application/activity+json", signer(t, body, p.key, actorID+"#main-key", time.Now()))
}

// collectionOf reads a collection of alpha's and its first page's items.
func collectionOf(t *testing.T, in instance, path string) (float64, []any) {
	t.Helper()
	c := getAS2(t, in, path)
	total, _ := c["totalItems"].(float64)
	page := getAS2(t, in, path+"?page=true")
	items, _ := page["orderedItems"].([]any)
	return total, items
}

// TestRepositoryLikesAndForkNotices drives a Repository actor's likes and forks from a
// signed loopback peer over real HTTP: a ForgeFed Like (Forgejo's star) is counted once
// per liker and listed, Undo{Like} takes it back (embedded or by id), a non-Person
// liker is refused, and a fork notice (Create{Repository} with origin) is verified
// against the fork's own document before it is listed in forks.
func TestRepositoryLikesAndForkNotices(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	ctx := context.Background()
	must(t, p.k8s.Create(ctx, &fedv1.FederatedActor{
		ObjectMeta: metav1.ObjectMeta{Namespace: "alpha", Name: "tool"},
		Spec: fedv1.FederatedActorSpec{ServerRef: fedv1.LocalObjectReference{Name: "forge"}, Type: fedv1.ActorRepository,
			PreferredUsername: "tool", Name: "tool"},
	}))
	tool := p.alpha.base() + "/actors/tool"
	waitServed(t, p.alpha, "tool")
	doc := getAS2(t, p.alpha, "/actors/tool")
	if doc["forks"] != tool+"/forks" || doc["likes"] != tool+"/likes" {
		t.Fatalf("Repository document: forks %v likes %v, want %s/forks and %s/likes", doc["forks"], doc["likes"], tool, tool)
	}
	if doc["ticketsTrackedBy"] != nil {
		t.Errorf("ticketsTrackedBy %v on a Repository that fronts no forge (no tickets go anywhere)", doc["ticketsTrackedBy"])
	}

	peer := startLoopPeer(t)
	alice := peer.actor("alice", []string{"Person"}, nil)
	bot := peer.actor("bot", []string{"Application"}, nil)
	like := func(actor, id string) map[string]any {
		return map[string]any{"@context": activitypub.ActivityStreamsContext, "id": id, "type": "Like", "actor": actor, "object": tool}
	}
	likes := func() (float64, []any) { return collectionOf(t, p.alpha, "/actors/tool/likes") }

	t.Run("a Like from a Person counts once per liker and is listed", func(t *testing.T) {
		if code, body := peer.send(t, p.alpha, alice, like(alice, alice+"/likes/1")); code != http.StatusAccepted {
			t.Fatalf("Like: %d %s", code, body)
		}
		n, items := likes()
		if n != 1 || len(items) != 1 {
			t.Fatalf("likes: totalItems %v items %v, want 1", n, items)
		}
		item, _ := items[0].(map[string]any)
		if item["id"] != alice+"/likes/1" || item["type"] != "Like" || item["actor"] != alice || item["object"] != tool {
			t.Errorf("likes item %v, want alice's Like of tool", item)
		}
		if code, body := peer.send(t, p.alpha, alice, like(alice, alice+"/likes/2")); code != http.StatusAccepted {
			t.Fatalf("second Like: %d %s", code, body)
		}
		if n, _ := likes(); n != 1 {
			t.Errorf("likes after a second Like from the same actor: %v, want 1", n)
		}
	})

	t.Run("a Like from a non-Person is refused and not counted", func(t *testing.T) {
		if code, body := peer.send(t, p.alpha, bot, like(bot, bot+"/likes/1")); code != http.StatusUnprocessableEntity {
			t.Errorf("Like by an Application: %d %s, want 422", code, body)
		}
		if n, _ := likes(); n != 1 {
			t.Errorf("likes: %v, want 1", n)
		}
	})

	t.Run("Undo of the Like removes it, embedded or by id", func(t *testing.T) {
		undo := map[string]any{"@context": activitypub.ActivityStreamsContext, "id": alice + "/undo/1", "type": "Undo", "actor": alice,
			"object": like(alice, alice+"/likes/1")}
		if code, body := peer.send(t, p.alpha, alice, undo); code != http.StatusAccepted {
			t.Fatalf("Undo: %d %s", code, body)
		}
		if n, items := likes(); n != 0 || len(items) != 0 {
			t.Errorf("likes after Undo: %v %v, want none", n, items)
		}
		if code, body := peer.send(t, p.alpha, alice, like(alice, alice+"/likes/3")); code != http.StatusAccepted {
			t.Fatalf("Like again: %d %s", code, body)
		}
		if n, _ := likes(); n != 1 {
			t.Fatalf("likes after a new Like: %v, want 1", n)
		}
		undo = map[string]any{"@context": activitypub.ActivityStreamsContext, "id": alice + "/undo/3", "type": "Undo", "actor": alice,
			"object": alice + "/likes/3"}
		if code, body := peer.send(t, p.alpha, alice, undo); code != http.StatusAccepted {
			t.Fatalf("Undo by id: %d %s", code, body)
		}
		if n, _ := likes(); n != 0 {
			t.Errorf("likes after Undo by id: %v, want 0", n)
		}
	})

	t.Run("a fork notice is verified against the fork's document and listed", func(t *testing.T) {
		forks := func() (float64, []any) { return collectionOf(t, p.alpha, "/actors/tool/forks") }
		repoTypes := []string{"Repository", "Service"}
		// A peer whose fork's document does not name tool: refused, nothing listed.
		liar := peer.actor("liar", repoTypes, map[string]any{"origin": p.alpha.base() + "/actors/other"})
		create := func(fork string) map[string]any {
			return map[string]any{"@context": []any{activitypub.ActivityStreamsContext, activitypub.ForgeFedContext},
				"id": fork + "/create", "type": "Create", "actor": fork,
				"object": map[string]any{"id": fork, "type": "Repository", "origin": tool}}
		}
		if code, body := peer.send(t, p.alpha, liar, create(liar)); code != http.StatusUnprocessableEntity {
			t.Errorf("fork notice whose fork does not name tool: %d %s, want 422", code, body)
		}
		// A fork named on another host than the signer's: refused.
		other := create(alice)
		other["object"].(map[string]any)["id"] = "https://elsewhere.example/actors/fork"
		if code, body := peer.send(t, p.alpha, alice, other); code != http.StatusBadRequest {
			t.Errorf("fork notice for a fork on another host: %d %s, want 400", code, body)
		}
		if n, _ := forks(); n != 0 {
			t.Fatalf("forks after refused notices: %v, want 0", n)
		}
		fork := peer.actor("fork", repoTypes, map[string]any{"origin": tool})
		for i := range 2 { // a repeated notice lists the fork once
			act := create(fork)
			act["id"] = fmt.Sprintf("%s/create/%d", fork, i)
			if code, body := peer.send(t, p.alpha, fork, act); code != http.StatusAccepted {
				t.Fatalf("fork notice: %d %s", code, body)
			}
		}
		n, items := forks()
		if n != 1 || len(items) != 1 || items[0] != fork {
			t.Errorf("forks: totalItems %v items %v, want [%s]", n, items, fork)
		}
	})
}
