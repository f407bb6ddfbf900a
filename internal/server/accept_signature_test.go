package server

import (
	"bytes"
	"context"
	"crypto"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/dunglas/httpsfv"

	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/keys"
)

// TestInboxAdvertisesAcceptSignature: an unsigned or unverifiable inbox POST is answered
// 401 with an Accept-Signature field (RFC 9421 section 5.1) that parses as an RFC 8941
// Dictionary, and a peer that fulfils any of its members, as a double-knocking Fedify
// does, is then accepted (202) by the same real server.
func TestInboxAdvertisesAcceptSignature(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	const actor = "https://peer.example/users/alice"
	peer := f.knownPeer(ctx, t, actor)
	n := 0
	post := func(t *testing.T, contentType string, sign func(*http.Request, []byte)) *http.Response {
		t.Helper()
		n++
		body := []byte(fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","id":"https://peer.example/notes/%d/activity","type":"Create","actor":"%s",`+
			`"to":["https://www.w3.org/ns/activitystreams#Public"],"object":{"id":"https://peer.example/notes/%d","type":"Note","content":"hello"}}`, n, actor, n))
		r, err := http.NewRequest(http.MethodPost, f.http.URL+"/inbox", bytes.NewReader(body))
		must(t, err)
		r.Host = testHost
		r.Header.Set("Content-Type", contentType)
		if sign != nil {
			sign(r, body)
		}
		resp, err := http.DefaultClient.Do(r)
		must(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	challenge := func(t *testing.T, resp *http.Response) *httpsfv.Dictionary {
		t.Helper()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("got %d, want 401", resp.StatusCode)
		}
		v := resp.Header.Values("Accept-Signature")
		if len(v) == 0 {
			t.Fatal("401 without Accept-Signature")
		}
		d, err := httpsfv.UnmarshalDictionary(v)
		if err != nil || len(d.Names()) == 0 {
			t.Fatalf("Accept-Signature %q is not a non-empty RFC 8941 Dictionary: %v", v, err)
		}
		return d
	}

	t.Run("unsigned", func(t *testing.T) {
		challenge(t, post(t, "application/activity+json", nil))
	})
	t.Run("signed with a key that is not the actor's", func(t *testing.T) {
		other, err := keys.Generate()
		must(t, err)
		challenge(t, post(t, "application/activity+json", func(r *http.Request, body []byte) {
			must(t, activitypub.SignCavage(r, body, other.RSA, actor+"#main-key", activitypub.CavageOptions{}))
		}))
	})
	t.Run("every member, fulfilled, is accepted", func(t *testing.T) {
		d := challenge(t, post(t, "application/activity+json", nil))
		signers := map[string]struct {
			key   crypto.Signer
			keyID string
		}{
			activitypub.AlgEd25519RFC:   {peer.Ed25519, actor + "#ed25519-key"},
			activitypub.AlgRSAv15SHA256: {peer.RSA, actor + "#main-key"},
			activitypub.AlgRSAPSSSHA512: {peer.RSA, actor + "#main-key"},
		}
		offered := map[string]bool{}
		for _, label := range d.Names() {
			m, _ := d.Get(label)
			il, ok := m.(httpsfv.InnerList)
			if !ok {
				t.Fatalf("member %s is not an inner list", label)
			}
			var comps []string
			for _, it := range il.Items {
				c, ok := it.Value.(string)
				if !ok {
					t.Fatalf("member %s: component %v is not a string", label, it.Value)
				}
				comps = append(comps, c)
			}
			if created, _ := il.Params.Get("created"); created != true {
				t.Errorf("member %s does not ask for created, which the verifier requires", label)
			}
			a, _ := il.Params.Get("alg")
			alg, _ := a.(string)
			offered[alg] = true
			s, ok := signers[alg]
			if !ok {
				continue // ecdsa-p256-sha256: fulfilled in internal/activitypub's test
			}
			resp := post(t, "application/activity+json", func(r *http.Request, body []byte) {
				must(t, activitypub.SignRFC9421(activitypub.Message{Request: r}, body, s.key,
					activitypub.RFC9421Options{Label: label, KeyID: s.keyID, Alg: alg, IncludeAlg: true, Components: comps}))
			})
			if resp.StatusCode != http.StatusAccepted {
				t.Errorf("member %s (%s over %v) fulfilled: got %d, want 202", label, alg, comps, resp.StatusCode)
			}
		}
		for alg := range signers {
			if !offered[alg] {
				t.Errorf("Accept-Signature does not offer %s", alg)
			}
		}
	})
	t.Run("other refusals carry no challenge", func(t *testing.T) {
		resp := post(t, "text/plain", nil)
		if resp.StatusCode != http.StatusUnsupportedMediaType || resp.Header.Get("Accept-Signature") != "" {
			t.Fatalf("got %d with Accept-Signature %q, want 415 without", resp.StatusCode, resp.Header.Get("Accept-Signature"))
		}
	})
}

// knownPeer gives a remote actor RSA and Ed25519 keys (under #main-key and #ed25519-key)
// that the server's key store holds already, as after a first fetch: no peer serves them.
func (f *fixture) knownPeer(ctx context.Context, t *testing.T, actor string) *keys.Pair {
	t.Helper()
	peer, err := keys.Generate()
	must(t, err)
	for id, pub := range map[string]crypto.PublicKey{actor + "#main-key": peer.RSA.Public(), actor + "#ed25519-key": peer.Ed25519.Public()} {
		pem, err := keys.EncodePublic(pub)
		must(t, err)
		must(t, f.srv.fed.keyStore.PutKey(ctx, &activitypub.StoredKey{KeyID: id, Owner: actor, PEM: string(pem),
			FetchedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}))
	}
	return peer
}
