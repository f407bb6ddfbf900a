package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/keys"
	"github.com/fedforge/fedforge/internal/store"
)

const moverHost = "mover.fedforge.test"

// moverPeer is a minimal remote server on 127.0.0.4 whose actor documents the test
// edits: an account that moves, its new account, and one that does not name the old.
type moverPeer struct {
	mu   sync.Mutex
	docs map[string][]byte
	addr string
}

func (m *moverPeer) put(path string, doc map[string]any) {
	b, _ := json.Marshal(doc)
	m.mu.Lock()
	m.docs[path] = b
	m.mu.Unlock()
}

func (m *moverPeer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	m.mu.Lock()
	b, ok := m.docs[r.URL.Path]
	m.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/activity+json")
	_, _ = w.Write(b)
}

func startMover(t *testing.T) *moverPeer {
	ln, err := net.Listen("tcp", "127.0.0.4:0")
	must(t, err)
	m := &moverPeer{docs: map[string][]byte{}, addr: ln.Addr().String()}
	srv := httptest.NewUnstartedServer(m)
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return m
}

func moverActor(id, name, inbox, pem string, aka ...string) map[string]any {
	doc := map[string]any{
		"@context": []any{"https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"},
		"id":       id, "type": "Person", "preferredUsername": id[strings.LastIndexByte(id, '/')+1:], "name": name,
		"inbox": inbox, "publicKey": map[string]any{"id": id + "#main-key", "owner": id, "publicKeyPem": pem},
	}
	if len(aka) > 0 {
		doc["alsoKnownAs"] = aka
	}
	return doc
}

// TestRemoteActorPromises checks what an inbound Update and Move of a remote actor
// change in what an instance stores: the Update replaces the cached document and the
// Subscription's inbox; a Move to an account that names the old one in alsoKnownAs
// migrates the Outbound Subscription, and a Move to one that does not is refused.
func TestRemoteActorPromises(t *testing.T) {
	t.Parallel()
	m := startMover(t)
	p := newPair(t, moverHost+"="+m.addr)
	ctx := context.Background()
	key, pem := rsaKey(t)
	base := "http://" + moverHost
	oldID, newID, liarID := base+"/users/old", base+"/users/new", base+"/users/liar"
	m.put("/users/old", moverActor(oldID, "Old", oldID+"/inbox", pem))
	m.put("/users/new", moverActor(newID, "New", newID+"/inbox", pem, oldID))
	m.put("/users/liar", moverActor(liarID, "Liar", liarID+"/inbox", pem))
	p.actor(t, p.alpha, "releases", "releases", false)
	p.follow(t, p.alpha, "follow-old", "releases", oldID)
	eventually(t, 30*time.Second, func() error {
		var s fedv1.Subscription
		if err := p.k8s.Get(ctx, types.NamespacedName{Namespace: "alpha", Name: "follow-old"}, &s); err != nil {
			return err
		}
		if s.Status.RemoteActorID != oldID || s.Status.FollowActivityID == "" {
			return fmt.Errorf("follow of %s not sent yet: %+v", oldID, s.Status)
		}
		return nil
	})
	st, err := store.Open(ctx, p.alpha.dsn)
	must(t, err)
	defer st.Close()
	const ct = "application/activity+json"
	send := func(body []byte) (int, string) {
		return post(t, p.alpha, "/inbox", body, ct, signer(t, body, key, oldID+"#main-key", time.Now()))
	}

	t.Run("Update of a remote actor replaces its stored document and inbox", func(t *testing.T) {
		renamed := moverActor(oldID, "Renamed Old", oldID+"/inbox2", pem)
		m.put("/users/old", renamed)
		body, _ := json.Marshal(map[string]any{"@context": "https://www.w3.org/ns/activitystreams", "id": oldID + "#update-1",
			"type": "Update", "actor": oldID, "object": renamed, "to": []string{"https://www.w3.org/ns/activitystreams#Public"}})
		if code, reason := send(body); code != http.StatusAccepted {
			t.Fatalf("Update: %d %s", code, reason)
		}
		eventually(t, 30*time.Second, func() error {
			ra, err := st.GetRemoteActor(ctx, oldID)
			if err != nil || !strings.Contains(string(ra.Raw), "Renamed Old") || ra.Inbox != oldID+"/inbox2" {
				return fmt.Errorf("stored actor: %+v, %v", ra, err)
			}
			var s fedv1.Subscription
			if err := p.k8s.Get(ctx, types.NamespacedName{Namespace: "alpha", Name: "follow-old"}, &s); err != nil {
				return err
			}
			if s.Status.RemoteInbox != oldID+"/inbox2" {
				return fmt.Errorf("subscription still delivers to %q", s.Status.RemoteInbox)
			}
			return nil
		})
	})

	move := func(n int, target string) []byte {
		b, _ := json.Marshal(map[string]any{"@context": "https://www.w3.org/ns/activitystreams", "id": fmt.Sprintf("%s#move-%d", oldID, n),
			"type": "Move", "actor": oldID, "object": oldID, "target": target})
		return b
	}
	t.Run("Move to an account that does not name the old one is refused", func(t *testing.T) {
		if code, reason := send(move(1, liarID)); code != http.StatusBadRequest {
			t.Errorf("Move to %s: %d %s, want 400", liarID, code, reason)
		}
		var s fedv1.Subscription
		must(t, p.k8s.Get(ctx, types.NamespacedName{Namespace: "alpha", Name: "follow-old"}, &s))
	})

	t.Run("Move to an account naming the old one migrates the Outbound Subscription", func(t *testing.T) {
		if code, reason := send(move(2, newID)); code != http.StatusAccepted {
			t.Fatalf("Move to %s: %d %s", newID, code, reason)
		}
		p.gone(t, "alpha", func(s fedv1.Subscription) bool { return s.Name == "follow-old" })
		eventually(t, 30*time.Second, func() error {
			var list fedv1.SubscriptionList
			if err := p.k8s.List(ctx, &list, client.InNamespace("alpha")); err != nil {
				return err
			}
			for _, s := range list.Items {
				if s.Spec.RemoteActor == newID && s.Spec.Direction == fedv1.DirectionOutbound && s.Spec.ActorRef.Name == "releases" &&
					s.Annotations["federation.fedforge.dev/moved-from"] == oldID {
					return nil
				}
			}
			return fmt.Errorf("no Outbound Subscription of releases to %s", newID)
		})
		if ra, err := st.GetRemoteActor(ctx, newID); err != nil || ra.Inbox != newID+"/inbox" {
			t.Errorf("new account not stored: %+v, %v", ra, err)
		}
	})
}

// TestKeyRotationReachesFollowers rotates a followed actor's keys: the Update(actor)
// signed with the previous key reaches the follower, whose key cache knew only the old
// key, and the next delivery, signed with the new keys, is verified at once (within the
// first retry's wait, long before the follower's refetch interval would allow a refetch).
func TestKeyRotationReachesFollowers(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	ctx := context.Background()
	p.actor(t, p.alpha, "releases", "releases", false)
	p.actor(t, p.beta, "w1", "w1", false)
	p.actor(t, p.beta, "w2", "w2", false)
	alphaID := p.alpha.base() + "/actors/releases"
	p.follow(t, p.beta, "w1-releases", "w1", alphaID)
	p.phase(t, "beta", "w1-releases", fedv1.PhaseAccepted)

	before := secretData(t, p, "alpha", "releases-keys")
	var a fedv1.FederatedActor
	must(t, p.k8s.Get(ctx, types.NamespacedName{Namespace: "alpha", Name: "releases"}, &a))
	patched := a.DeepCopy()
	patched.Annotations = map[string]string{fedv1.AnnotationRotateKeys: "now"}
	must(t, p.k8s.Patch(ctx, patched, client.MergeFrom(&a)))
	var newRSA []byte
	eventually(t, 30*time.Second, func() error {
		after := secretData(t, p, "alpha", "releases-keys")
		if string(after[keys.RSAPublicKey]) == string(before[keys.RSAPublicKey]) {
			return fmt.Errorf("keys not rotated yet")
		}
		newRSA = after[keys.RSAPublicKey]
		return nil
	})
	betaStore, err := store.Open(ctx, p.beta.dsn)
	must(t, err)
	defer betaStore.Close()
	// The Update (signed with the previous key, the only one beta knows) was verified and
	// applied: beta's copy of the actor carries the new key.
	quoted, _ := json.Marshal(strings.TrimSpace(string(newRSA)))
	want := strings.Trim(string(quoted), `"`)
	eventually(t, 30*time.Second, func() error {
		ra, err := betaStore.GetRemoteActor(ctx, alphaID)
		if err != nil || !strings.Contains(string(ra.Raw), want) {
			return fmt.Errorf("the follower's copy of %s does not carry the new key yet (%v)", alphaID, err)
		}
		return nil
	})
	p.follow(t, p.beta, "w2-releases", "w2", alphaID)
	p.phase(t, "beta", "w2-releases", fedv1.PhaseAccepted)
}

// secretData reads a Secret's data.
func secretData(t *testing.T, p *pair, ns, name string) map[string][]byte {
	t.Helper()
	var s corev1.Secret
	must(t, p.k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, &s))
	return s.Data
}
