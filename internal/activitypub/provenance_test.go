package activitypub

import (
	"context"
	"net/http"
	"testing"
	"time"
)

// TestFetchObjectProvenance: a document is returned only when it was served from its own
// id; a document claiming another id is refetched from that id once (issue 20, the class
// of CVE-2024-23832).
func TestFetchObjectProvenance(t *testing.T) {
	n := newTestNet()
	p := newPeer(t, n)
	alice := p.base + "/users/alice"
	p.put("/uploads/liar.json", map[string]any{"id": alice, "type": "Person", "inbox": alice + "/inbox"})
	p.put("/uploads/anonymous.json", map[string]any{"type": "Person"})
	p.put("/uploads/foreign.json", map[string]any{"id": "https://mastodon.example.com/users/gargron", "type": "Person"})
	p.put("/uploads/hop1.json", map[string]any{"id": p.base + "/uploads/hop2.json", "type": "Note"})
	p.put("/uploads/hop2.json", map[string]any{"id": p.base + "/uploads/hop3.json", "type": "Note"})
	redirects := http.NewServeMux()
	redirects.HandleFunc("/@alice", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, alice, http.StatusFound)
	})
	redirects.HandleFunc("/elsewhere", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, p.base+"/uploads/liar.json", http.StatusFound)
	})
	rbase := n.serve(t, "redirect.example.com", redirects)
	gtsStub(p)
	client := n.client(true)
	tests := map[string]struct {
		url     string
		wantID  string // "" = refused with KindWrongOwner
		fetches int64  // requests to the peer
	}{
		"served from its own id":                 {url: alice, wantID: alice, fetches: 1},
		"redirected to its own id":               {url: rbase + "/@alice", wantID: alice, fetches: 1},
		"claims another id: refetched from it":   {url: p.base + "/uploads/liar.json", wantID: alice, fetches: 2},
		"key document with its own id":           {url: p.base + "/users/gts/main-key", wantID: p.base + "/users/gts/main-key", fetches: 1},
		"GoToSocial stub claiming the actor":     {url: p.base + "/users/gts2/main-key", wantID: p.base + "/users/gts2", fetches: 2},
		"no id":                                  {url: p.base + "/uploads/anonymous.json", fetches: 1},
		"id on another host":                     {url: p.base + "/uploads/foreign.json", fetches: 1},
		"claimed id claims yet another: refused": {url: p.base + "/uploads/hop1.json", fetches: 2},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			before := p.hits.Load()
			o, err := client.FetchObject(context.Background(), tc.url, nil)
			if got := p.hits.Load() - before; got != tc.fetches {
				t.Errorf("%d fetches from the peer, want %d", got, tc.fetches)
			}
			id := "(none)"
			if o != nil {
				id = o.ID
			}
			if tc.wantID == "" {
				if !isKind(err, KindWrongOwner) {
					t.Fatalf("got %v, document %s; want a wrong-owner refusal", err, id)
				}
				return
			}
			if err != nil || id != tc.wantID {
				t.Fatalf("got %v, document %s; want %s", err, id, tc.wantID)
			}
		})
	}
}

// TestKeyCacheRefusesADocumentClaimingAnActor is issue 20's first accepted attack: a JSON
// file uploaded to alice's host claims to be alice and lists a key of the uploader's.
// Before the fix, a request signed with that key as alice verified.
func TestKeyCacheRefusesADocumentClaimingAnActor(t *testing.T) {
	n := newTestNet()
	p := newPeer(t, n)
	alice := p.base + "/users/alice"
	liarKey := p.base + "/uploads/liar.json#main-key"
	attackerPEM := string(mustRead(t, "httpsig/cavage-test-key.pub.pem"))
	p.put("/uploads/liar.json", map[string]any{
		"@context": ActorContext(), "id": alice, "type": "Person", "inbox": alice + "/inbox", "preferredUsername": "alice",
		"publicKey": map[string]any{"id": liarKey, "owner": alice, "publicKeyPem": attackerPEM},
	})
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	v := NewVerifier(NewKeyCache(n.client(true), nil, KeyCacheConfig{Now: func() time.Time { return now }}), 100)
	v.Now = func() time.Time { return now }
	body := []byte(`{"type":"Follow","actor":"` + alice + `"}`)
	req := signedRequest(t, sigCase{method: "POST", body: body, keyID: liarKey, key: loadPriv(t, "cavage-test-key"), at: now})
	got, err := v.VerifyRequest(context.Background(), req, body)
	if err == nil {
		t.Fatalf("a key listed by a document that only claims to be %s verified as %s's", alice, got.Owner)
	}
	if !isKind(err, KindWrongOwner) || StatusOf(err) != http.StatusUnauthorized {
		t.Fatalf("got %v, want wrong-owner/401", err)
	}
}

// gtsStub serves /users/gts2 the way GoToSocial does: its key /users/gts2/main-key is
// served as a stub of the actor (the actor's id, only the publicKey).
func gtsStub(p *peer) {
	id := p.base + "/users/gts2"
	gts := NewActor(ActorSpec{ID: id, Types: []string{TypePerson}, PreferredUsername: "gts2", Inbox: id + "/inbox"})
	gts.PublicKey = PublicKeys{{ID: id + "/main-key", Owner: id, PublicKeyPem: p.rsaPEM}}
	p.put("/users/gts2", gts)
	p.put("/users/gts2/main-key", map[string]any{"id": id, "type": "Person", "publicKey": gts.PublicKey[0]})
}

// TestKeyCacheGoToSocialStub: GoToSocial's key stub leads to the actor, fetched from its
// own id, which lists the key.
func TestKeyCacheGoToSocialStub(t *testing.T) {
	n := newTestNet()
	p := newPeer(t, n)
	gtsStub(p)
	kc := NewKeyCache(n.client(true), nil, KeyCacheConfig{})
	k, err := kc.ResolveKey(context.Background(), p.base+"/users/gts2/main-key", false)
	if err != nil || k.Owner != p.base+"/users/gts2" {
		t.Fatalf("%v %+v", err, k)
	}
}

// TestKeyCacheKeepsABinding: a key bound to one actor is never rebound to another, also
// through a failed refetch.
func TestKeyCacheKeepsABinding(t *testing.T) {
	n := newTestNet()
	p := newPeer(t, n)
	ctx := context.Background()
	clock := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	store := &MemoryKeyStore{}
	kc := NewKeyCache(n.client(true), store, KeyCacheConfig{Now: func() time.Time { return clock }})
	gtsKey := p.base + "/users/gts/main-key"
	if k, err := kc.ResolveKey(ctx, gtsKey, false); err != nil || k.Owner != p.base+"/users/gts" {
		t.Fatalf("%v %+v", err, k)
	}
	// The peer now serves the key document with another owner (on its host, listing it).
	other := NewActor(ActorSpec{ID: p.base + "/users/other", Types: []string{TypePerson}, PreferredUsername: "other", Inbox: p.base + "/users/other/inbox"})
	other.PublicKey = PublicKeys{{ID: gtsKey, Owner: other.ID, PublicKeyPem: p.rsaPEM}}
	p.put("/users/other", other)
	p.put("/users/gts/main-key", map[string]any{"id": gtsKey, "owner": other.ID, "publicKeyPem": p.rsaPEM})
	clock = clock.Add(25 * time.Hour)
	if k, err := kc.ResolveKey(ctx, gtsKey, false); !isKind(err, KindWrongOwner) {
		t.Fatalf("key rebound: %v %+v", err, k)
	}
	sk, _ := store.GetKey(ctx, gtsKey)
	if sk == nil || sk.Owner != p.base+"/users/gts" {
		t.Fatalf("binding lost: %+v", sk)
	}
}

// TestPutActorKeys is issue 20's second accepted attack: an actor's Update may bring only
// keys under its own document, never one of another actor or host, and nothing is stored
// when one key breaks the rule.
func TestPutActorKeys(t *testing.T) {
	pemA := string(mustRead(t, "httpsig/test-key-rsa.pub.pem"))
	actor := "https://peer.example.com/users/mallory"
	key := func(id string) PublicKey { return PublicKey{ID: id, Owner: actor, PublicKeyPem: pemA} }
	tests := map[string]struct {
		keys   []PublicKey
		bound  map[string]string // keyId -> owner already cached
		stored int               // -1: refused
	}{
		"fragment of its own id":         {keys: []PublicKey{key(actor + "#main-key")}, stored: 1},
		"GoToSocial path below its id":   {keys: []PublicKey{key(actor + "/main-key")}, stored: 1},
		"BookWyrm slash and fragment":    {keys: []PublicKey{key(actor + "/#main-key")}, stored: 1},
		"rotation of its own bound key":  {keys: []PublicKey{key(actor + "#main-key")}, bound: map[string]string{actor + "#main-key": actor}, stored: 1},
		"another actor's key, same host": {keys: []PublicKey{key(actor + "#main-key"), key("https://peer.example.com/users/alice#main-key")}, stored: -1},
		"a key of ours":                  {keys: []PublicKey{key("http://127.0.0.1:8080/actors/releases-myproject#x")}, stored: -1},
		"a third host's key":             {keys: []PublicKey{key("http://127.0.0.2:8080/users/alice#x")}, stored: -1},
		"two segments below":             {keys: []PublicKey{key(actor + "/keys/1")}, stored: -1},
		"dot segments":                   {keys: []PublicKey{key(actor + "/..#main-key")}, stored: -1},
		"query":                          {keys: []PublicKey{key(actor + "/k?x=1")}, stored: -1},
		"prefix that is not a path":      {keys: []PublicKey{key(actor + "2#main-key")}, stored: -1},
		"bound to another actor":         {keys: []PublicKey{key(actor + "/main-key")}, bound: map[string]string{actor + "/main-key": "https://peer.example.com/users/alice"}, stored: -1},
		"owned by someone else: ignored": {keys: []PublicKey{{ID: "https://peer.example.com/users/alice#main-key", Owner: "https://peer.example.com/users/alice", PublicKeyPem: pemA}}, stored: 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			store := &MemoryKeyStore{}
			for id, owner := range tc.bound {
				_ = store.PutKey(ctx, &StoredKey{KeyID: id, Owner: owner, PEM: pemA, ExpiresAt: time.Now().Add(time.Hour)})
			}
			kc := NewKeyCache(nil, store, KeyCacheConfig{})
			doc := &Object{ID: actor, PublicKey: tc.keys}
			n, err := kc.PutActorKeys(ctx, doc)
			if tc.stored < 0 {
				if !isKind(err, KindWrongOwner) {
					t.Fatalf("got %v (%d stored), want a wrong-owner refusal", err, n)
				}
				for _, k := range tc.keys {
					if sk, _ := store.GetKey(ctx, k.ID); sk != nil && sk.Owner == actor && tc.bound[k.ID] != actor {
						t.Errorf("key %s stored from a refused document", k.ID)
					}
				}
				return
			}
			if err != nil || n != tc.stored {
				t.Fatalf("got %d, %v; want %d", n, err, tc.stored)
			}
		})
	}
}
