package activitypub

import (
	"bytes"
	"io"
	"net/http"
	"testing"

	"github.com/dunglas/httpsfv"
)

// TestAcceptSignatureIsFulfillable parses the advertised Accept-Signature as an RFC 8941
// Dictionary and, for every member, signs an inbox POST exactly as it asks (its
// components, its alg, created) with a key of that type and sends it to a real server:
// each one must verify.
func TestAcceptSignatureIsFulfillable(t *testing.T) {
	n := newTestNet()
	p := newPeer(t, n)
	eccPEM := string(mustRead(t, "httpsig/test-key-ecc-p256.pub.pem"))
	ecc := NewActor(ActorSpec{ID: p.base + "/users/ecc", Types: []string{TypePerson}, PreferredUsername: "ecc", Inbox: p.base + "/users/ecc/inbox"})
	ecc.PublicKey = PublicKeys{{ID: ecc.ID + "#main-key", Owner: ecc.ID, PublicKeyPem: eccPEM}}
	p.put("/users/ecc", ecc)
	srv := inboxServer(t, NewVerifier(NewKeyCache(n.client(true), nil, KeyCacheConfig{}), 100))
	alice := p.base + "/users/alice"
	signers := map[string]struct {
		key   string
		keyID string
	}{
		AlgEd25519RFC:      {"test-key-ed25519", alice + "#ed25519-key"},
		AlgRSAv15SHA256:    {"test-key-rsa", alice + "#main-key"},
		AlgRSAPSSSHA512:    {"test-key-rsa", alice + "#main-key"},
		AlgECDSAP256SHA256: {"test-key-ecc-p256", ecc.ID + "#main-key"},
	}

	d, err := httpsfv.UnmarshalDictionary([]string{AcceptSignature()})
	if err != nil {
		t.Fatalf("Accept-Signature %q is not a Dictionary: %v", AcceptSignature(), err)
	}
	if len(d.Names()) != len(signers) {
		t.Fatalf("Accept-Signature %q has %d members, want one per algorithm (%d)", AcceptSignature(), len(d.Names()), len(signers))
	}
	seen := map[string]bool{}
	for _, label := range d.Names() {
		m, _ := d.Get(label)
		il, ok := m.(httpsfv.InnerList)
		if !ok {
			t.Fatalf("member %s is not an inner list", label)
		}
		alg, _ := il.Params.Get("alg")
		algName, _ := alg.(string)
		if created, _ := il.Params.Get("created"); created != true {
			t.Errorf("member %s does not ask for created", label)
		}
		s, ok := signers[algName]
		if !ok || seen[algName] {
			t.Fatalf("member %s asks for alg %v", label, alg)
		}
		seen[algName] = true
		var comps []string
		for _, it := range il.Items {
			comps = append(comps, it.Value.(string))
		}
		owner := alice
		if algName == AlgECDSAP256SHA256 {
			owner = ecc.ID
		}
		body := []byte(`{"type":"Follow","actor":"` + owner + `"}`)
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/inbox", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if err := SignRFC9421(Message{Request: req}, body, loadPriv(t, s.key), RFC9421Options{Label: label, KeyID: s.keyID, Alg: algName, IncludeAlg: true, Components: comps}); err != nil {
			t.Fatalf("%s: sign: %v", label, err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Errorf("%s (%s over %v): got %d %s, want 202", label, algName, comps, resp.StatusCode, msg)
		}
	}
}
