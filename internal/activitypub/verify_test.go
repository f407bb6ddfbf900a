package activitypub

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// peer is a remote server on loopback that serves actors and keys the way Mastodon,
// GoToSocial and FEP-521a servers do.
type peer struct {
	mu     sync.Mutex
	docs   map[string][]byte // path -> document
	hits   atomic.Int64
	delay  time.Duration
	base   string
	rsaPEM string
	edPub  ed25519.PublicKey
}

func (p *peer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.hits.Add(1)
	time.Sleep(p.delay)
	p.mu.Lock()
	doc, ok := p.docs[r.URL.Path]
	p.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/activity+json")
	_, _ = w.Write(doc)
}

func (p *peer) put(path string, v any) {
	b, _ := json.Marshal(v)
	p.mu.Lock()
	p.docs[path] = b
	p.mu.Unlock()
}

// newPeer serves, on alice.example.com:
//
//	/users/alice   Mastodon-style actor, RSA key <actor>#main-key, Ed25519 Multikey
//	/users/gts     actor whose key id is <actor>/main-key, served at that path as a key
//	/users/liar    actor whose publicKey names another owner
//	/users/thief/main-key  key document claiming an owner on another host
func newPeer(t *testing.T, n *testNet) *peer {
	p := &peer{docs: map[string][]byte{}}
	p.base = n.serve(t, "alice.example.com", p)
	p.rsaPEM = string(mustRead(t, "httpsig/test-key-rsa.pub.pem"))
	p.edPub = loadPub(t, "test-key-ed25519").(ed25519.PublicKey)
	alice := NewActor(ActorSpec{ID: p.base + "/users/alice", Types: []string{TypePerson}, PreferredUsername: "alice",
		Inbox: p.base + "/users/alice/inbox", RSAPublicKeyPEM: p.rsaPEM, Ed25519PublicKey: p.edPub})
	p.put("/users/alice", alice)
	gts := NewActor(ActorSpec{ID: p.base + "/users/gts", Types: []string{TypePerson}, PreferredUsername: "gts", Inbox: p.base + "/users/gts/inbox"})
	gts.PublicKey = PublicKeys{{ID: p.base + "/users/gts/main-key", Owner: gts.ID, PublicKeyPem: p.rsaPEM}}
	p.put("/users/gts", gts)
	p.put("/users/gts/main-key", map[string]any{"@context": SecurityContext, "id": p.base + "/users/gts/main-key", "owner": gts.ID, "publicKeyPem": p.rsaPEM})
	liar := NewActor(ActorSpec{ID: p.base + "/users/liar", Types: []string{TypePerson}, PreferredUsername: "liar", Inbox: p.base + "/users/liar/inbox", RSAPublicKeyPEM: p.rsaPEM})
	liar.PublicKey[0].Owner = "https://alice.example.com/users/alice"
	p.put("/users/liar", liar)
	p.put("/users/thief/main-key", map[string]any{"id": p.base + "/users/thief/main-key", "owner": "https://mastodon.example.com/users/gargron", "publicKeyPem": p.rsaPEM})
	return p
}

type sigCase struct {
	method  string
	body    []byte
	keyID   string
	key     crypto.Signer
	scheme  string
	at      time.Time // signing time
	headers []string  // cavage headers; nil = default
	comps   []string  // RFC 9421 components; nil = default
	mutate  func(r *http.Request)
	twice   bool // verify twice (replay)
	kind    Kind
	status  int
}

func TestVerifyRequest(t *testing.T) {
	n := newTestNet()
	p := newPeer(t, n)
	client := n.client(true)
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	rsaKey := loadPriv(t, "test-key-rsa")
	edKey := loadPriv(t, "test-key-ed25519")
	wrong := loadPriv(t, "cavage-test-key")
	alice := p.base + "/users/alice"
	body := []byte(`{"type":"Follow","actor":"` + alice + `"}`)
	tests := map[string]sigCase{
		"cavage rsa-sha256 (Mastodon)":           {keyID: alice + "#main-key", key: rsaKey},
		"cavage hs2019 ed25519 (Multikey)":       {keyID: alice + "#ed25519-key", key: edKey},
		"cavage GoToSocial /main-key":            {keyID: p.base + "/users/gts/main-key", key: rsaKey},
		"cavage GET with host":                   {method: "GET", body: nil, keyID: alice + "#main-key", key: rsaKey},
		"rfc9421 rsa-v1_5-sha256":                {scheme: SchemeRFC9421, keyID: alice + "#main-key", key: rsaKey},
		"rfc9421 ed25519":                        {scheme: SchemeRFC9421, keyID: alice + "#ed25519-key", key: edKey},
		"rfc9421 GET":                            {scheme: SchemeRFC9421, method: "GET", body: nil, keyID: alice + "#main-key", key: rsaKey},
		"4 min old":                              {keyID: alice + "#main-key", key: rsaKey, at: now.Add(-4 * time.Minute)},
		"1 h fast clock (skew)":                  {keyID: alice + "#main-key", key: rsaKey, at: now.Add(59 * time.Minute)},
		"unsigned":                               {keyID: alice + "#main-key", key: rsaKey, mutate: func(r *http.Request) { r.Header.Del("Signature") }, kind: KindUnsigned, status: 401},
		"expired (66 min)":                       {keyID: alice + "#main-key", key: rsaKey, at: now.Add(-66 * time.Minute), kind: KindExpired, status: 401},
		"created 2 h in the future":              {keyID: alice + "#main-key", key: rsaKey, at: now.Add(2 * time.Hour), kind: KindExpired, status: 401},
		"rfc9421 expired":                        {scheme: SchemeRFC9421, keyID: alice + "#main-key", key: rsaKey, at: now.Add(-2 * time.Hour), kind: KindExpired, status: 401},
		"replayed":                               {keyID: alice + "#main-key", key: rsaKey, twice: true, kind: KindReplayed, status: 401},
		"rfc9421 replayed":                       {scheme: SchemeRFC9421, keyID: alice + "#main-key", key: rsaKey, twice: true, kind: KindReplayed, status: 401},
		"digest mismatch":                        {keyID: alice + "#main-key", key: rsaKey, mutate: func(r *http.Request) { r.Header.Set("Digest", DigestSHA256([]byte("other"))) }, kind: KindDigestMismatch, status: 401},
		"content-digest mismatch":                {scheme: SchemeRFC9421, keyID: alice + "#main-key", key: rsaKey, mutate: func(r *http.Request) { r.Header.Set("Content-Digest", ContentDigest("sha-256", []byte("x"))) }, kind: KindDigestMismatch, status: 401},
		"POST without digest signed":             {keyID: alice + "#main-key", key: rsaKey, headers: []string{"(request-target)", "host", "date"}, kind: KindWeakSignature, status: 401},
		"GET without host signed":                {method: "GET", body: nil, keyID: alice + "#main-key", key: rsaKey, headers: []string{"(request-target)", "date"}, kind: KindWeakSignature, status: 401},
		"no date or created":                     {keyID: alice + "#main-key", key: rsaKey, headers: []string{"(request-target)", "host", "digest"}, kind: KindWeakSignature, status: 401},
		"rfc9421 without @target-uri":            {scheme: SchemeRFC9421, keyID: alice + "#main-key", key: rsaKey, comps: []string{"@method", "@authority", "@path", "content-digest"}, kind: KindWeakSignature, status: 401},
		"rfc9421 POST without content-digest":    {scheme: SchemeRFC9421, keyID: alice + "#main-key", key: rsaKey, comps: []string{"@method", "@target-uri"}, kind: KindWeakSignature, status: 401},
		"wrong key":                              {keyID: alice + "#main-key", key: wrong, kind: KindBadSignature, status: 401},
		"rfc9421 wrong key":                      {scheme: SchemeRFC9421, keyID: alice + "#main-key", key: wrong, kind: KindBadSignature, status: 401},
		"tampered signed header":                 {keyID: alice + "#main-key", key: rsaKey, mutate: func(r *http.Request) { r.Host = "evil.example.com" }, kind: KindBadSignature, status: 401},
		"key owner is another actor":             {keyID: p.base + "/users/liar#main-key", key: rsaKey, kind: KindWrongOwner, status: 401},
		"key document claims a foreign owner":    {keyID: p.base + "/users/thief/main-key", key: rsaKey, kind: KindWrongOwner, status: 401},
		"unknown key":                            {keyID: p.base + "/users/nobody#main-key", key: rsaKey, kind: KindUnknownKey, status: 401},
		"keyId targets a private address (SSRF)": {keyID: "https://10.0.0.1/users/x#main-key", key: rsaKey, kind: KindForbidden, status: 403},
		"keyId is not a URL":                     {keyID: "Test", key: rsaKey, kind: KindMalformed, status: 400},
		"malformed Signature header":             {keyID: alice + "#main-key", key: rsaKey, mutate: func(r *http.Request) { r.Header.Set("Signature", `keyId="x",signature="@@@"`) }, kind: KindMalformed, status: 400},
		"malformed Signature-Input":              {scheme: SchemeRFC9421, keyID: alice + "#main-key", key: rsaKey, mutate: func(r *http.Request) { r.Header.Set("Signature-Input", "sig1=(") }, kind: KindMalformed, status: 400},
		"oversized Signature header":             {keyID: alice + "#main-key", key: rsaKey, mutate: func(r *http.Request) { r.Header.Set("Signature", strings.Repeat("a", 9000)) }, kind: KindTooLarge, status: 413},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			v := NewVerifier(NewKeyCache(client, nil, KeyCacheConfig{}), 100)
			v.Now = func() time.Time { return now }
			if tc.method == "" {
				tc.method = "POST"
				if tc.body == nil {
					tc.body = body
				}
			}
			if tc.at.IsZero() {
				tc.at = now
			}
			req := signedRequest(t, tc)
			_, err := v.VerifyRequest(context.Background(), req, tc.body)
			if tc.twice && err == nil {
				_, err = v.VerifyRequest(context.Background(), signedCopy(req), tc.body)
			}
			if tc.kind == "" {
				if err != nil {
					t.Fatalf("verify: %v", err)
				}
				return
			}
			if !isKind(err, tc.kind) || StatusOf(err) != tc.status {
				t.Fatalf("got %v (status %d), want %s/%d", err, StatusOf(err), tc.kind, tc.status)
			}
			var e *Error
			if asErr(err, &e); e.Host == "" {
				t.Fatalf("error names no host: %v", err)
			}
		})
	}
}

func signedCopy(r *http.Request) *http.Request {
	c := r.Clone(context.Background())
	return c
}

func signedRequest(t *testing.T, tc sigCase) *http.Request {
	t.Helper()
	var rd *bytes.Reader
	if tc.body != nil {
		rd = bytes.NewReader(tc.body)
	}
	var req *http.Request
	if rd != nil {
		req = httptest.NewRequest(tc.method, "https://fedforge.example.com/inbox?x=1", rd)
	} else {
		req = httptest.NewRequest(tc.method, "https://fedforge.example.com/inbox?x=1", nil)
	}
	if tc.scheme == SchemeRFC9421 {
		alg, _ := rfc9421AlgFor(tc.key)
		comps := tc.comps
		if comps == nil {
			comps = DefaultRFC9421Components(tc.body != nil)
		}
		if err := SignRFC9421(Message{Request: req}, tc.body, tc.key, RFC9421Options{KeyID: tc.keyID, Alg: alg, Created: tc.at, Components: comps}); err != nil {
			t.Fatal(err)
		}
	} else if err := SignCavage(req, tc.body, tc.key, tc.keyID, CavageOptions{Now: tc.at, Headers: tc.headers}); err != nil {
		t.Fatal(err)
	}
	if tc.mutate != nil {
		tc.mutate(req)
	}
	return req
}

func TestVerifiedCheckActor(t *testing.T) {
	v := &Verified{KeyID: "https://a.example.com/u#main-key", Owner: "https://a.example.com/u"}
	if err := v.CheckActor("https://a.example.com/u"); err != nil {
		t.Fatal(err)
	}
	if err := v.CheckActor("https://b.example.com/u"); !isKind(err, KindWrongOwner) {
		t.Fatalf("got %v", err)
	}
}

func TestKeyCache(t *testing.T) {
	n := newTestNet()
	p := newPeer(t, n)
	client := n.client(true)
	clock := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	advance := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }
	kc := NewKeyCache(client, nil, KeyCacheConfig{Now: now, RefetchInterval: time.Hour, NegativeTTL: 10 * time.Minute, TTL: 24 * time.Hour})
	ctx := context.Background()
	alice := p.base + "/users/alice#main-key"

	t.Run("concurrent resolutions share one fetch", func(t *testing.T) {
		p.delay = 50 * time.Millisecond
		defer func() { p.delay = 0 }()
		before := p.hits.Load()
		var wg sync.WaitGroup
		for i := 0; i < 20; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := kc.ResolveKey(ctx, alice, false); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if got := p.hits.Load() - before; got != 1 {
			t.Fatalf("%d fetches, want 1", got)
		}
	})
	t.Run("cached until TTL", func(t *testing.T) {
		before := p.hits.Load()
		k1, _ := kc.ResolveKey(ctx, alice, false)
		k2, _ := kc.ResolveKey(ctx, alice, false)
		if p.hits.Load() != before || k1 != k2 {
			t.Fatal("cached key refetched or reparsed")
		}
		advance(25 * time.Hour)
		if _, err := kc.ResolveKey(ctx, alice, false); err != nil || p.hits.Load() != before+1 {
			t.Fatalf("expired key not refetched: %v", err)
		}
	})
	t.Run("negative caching", func(t *testing.T) {
		missing := p.base + "/users/ghost#main-key"
		before := p.hits.Load()
		for i := 0; i < 3; i++ {
			if _, err := kc.ResolveKey(ctx, missing, false); !isKind(err, KindUnknownKey) && !isKind(err, KindNotFound) {
				t.Fatalf("got %v", err)
			}
		}
		if got := p.hits.Load() - before; got != 1 {
			t.Fatalf("%d fetches of a missing key, want 1", got)
		}
		advance(11 * time.Minute)
		_, _ = kc.ResolveKey(ctx, missing, false)
		if got := p.hits.Load() - before; got != 2 {
			t.Fatalf("negative entry did not expire (%d fetches)", got)
		}
	})
	t.Run("rotation: refetch once, rate limited", func(t *testing.T) {
		// The peer rotates alice's key to the cavage test key.
		newPEM := string(mustRead(t, "httpsig/cavage-test-key.pub.pem"))
		rotated := NewActor(ActorSpec{ID: p.base + "/users/alice", Types: []string{TypePerson}, PreferredUsername: "alice", Inbox: p.base + "/users/alice/inbox", RSAPublicKeyPEM: newPEM})
		p.put("/users/alice", rotated)
		v := &Verifier{Keys: kc, Replay: NewReplayCache(10), Now: now}
		body := []byte(`{}`)
		sign := func() *http.Request {
			return signedRequest(t, sigCase{method: "POST", body: body, keyID: alice, key: loadPriv(t, "cavage-test-key"), at: now()})
		}
		// Within the refetch interval of the last fetch: no refetch, verification fails.
		before := p.hits.Load()
		if _, err := v.VerifyRequest(ctx, sign(), body); !isKind(err, KindBadSignature) {
			t.Fatalf("got %v", err)
		}
		if p.hits.Load() != before {
			t.Fatal("refetched inside the refetch interval")
		}
		advance(61 * time.Minute)
		if _, err := v.VerifyRequest(ctx, sign(), body); err != nil {
			t.Fatalf("rotated key not picked up: %v", err)
		}
		if got := p.hits.Load() - before; got != 1 {
			t.Fatalf("%d refetches, want 1", got)
		}
	})
	t.Run("persisted entries survive a new cache", func(t *testing.T) {
		store := &MemoryKeyStore{}
		kc1 := NewKeyCache(client, store, KeyCacheConfig{Now: now})
		if _, err := kc1.ResolveKey(ctx, p.base+"/users/gts/main-key", false); err != nil {
			t.Fatal(err)
		}
		before := p.hits.Load()
		kc2 := NewKeyCache(client, store, KeyCacheConfig{Now: now})
		k, err := kc2.ResolveKey(ctx, p.base+"/users/gts/main-key", false)
		if err != nil || k.Owner != p.base+"/users/gts" || p.hits.Load() != before {
			t.Fatalf("%v %+v", err, k)
		}
	})
}
