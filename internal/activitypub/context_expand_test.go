package activitypub

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"

	"github.com/piprate/json-gold/ld"
)

// Expanded IRIs of the FEP-521a key properties (Controlled Identifiers 1.0 and Multikey,
// as https://www.w3.org/ns/cid/v1, https://www.w3.org/ns/did/v1 and
// https://w3id.org/security/multikey/v1 define them).
const (
	secAssertionMethod    = "https://w3id.org/security#assertionMethod"
	secMultikey           = "https://w3id.org/security#Multikey"
	secController         = "https://w3id.org/security#controller"
	secPublicKeyMultibase = "https://w3id.org/security#publicKeyMultibase"
	secMultibase          = "https://w3id.org/security#multibase"
)

// preloadedContexts are copies of the context documents Fedify ships built in
// (testdata/contexts, see SOURCES.md), by IRI, and ForgeFed's context, which only the
// comparison in TestRepositoryForgeFedTermsExpand loads (we never name it).
var preloadedContexts = map[string]string{
	ActivityStreamsContext:                  "contexts/activitystreams.jsonld",
	SecurityContext:                         "contexts/security-v1.jsonld",
	DataIntegrityContext:                    "contexts/data-integrity-v1.jsonld",
	"https://www.w3.org/ns/did/v1":          "contexts/did-v1.jsonld",
	"https://w3id.org/security/multikey/v1": "contexts/multikey-v1.jsonld",
	ForgeFedContext:                         "contexts/forgefed.jsonld",
}

// offlineLoader is a JSON-LD document loader that serves only the listed preloaded
// contexts and refuses everything else, so expansion never touches the network and fails
// if a document names a context a peer would have to fetch.
type offlineLoader struct {
	t    testing.TB
	iris map[string]bool
}

func (l offlineLoader) LoadDocument(u string) (*ld.RemoteDocument, error) {
	if !l.iris[u] {
		return nil, fmt.Errorf("context %s is not preloaded", u)
	}
	doc, err := ld.DocumentFromReader(bytes.NewReader(mustRead(l.t, preloadedContexts[u])))
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", u, err)
	}
	return &ld.RemoteDocument{DocumentURL: u, Document: doc}, nil
}

// expand runs JSON-LD 1.1 expansion of doc with a loader serving only iris.
func expand(t *testing.T, doc any, iris ...string) []any {
	t.Helper()
	opts := ld.NewJsonLdOptions("")
	opts.ProcessingMode = ld.JsonLd_1_1
	loader := offlineLoader{t: t, iris: map[string]bool{}}
	for _, iri := range iris {
		loader.iris[iri] = true
	}
	opts.DocumentLoader = loader
	out, err := ld.NewJsonLdProcessor().Expand(doc, opts)
	if err != nil {
		t.Fatalf("expand: %v", err)
	}
	return out
}

// toJSONAny turns v into the generic form a JSON-LD processor takes.
func toJSONAny(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// expandedKeys returns the expanded assertionMethod values of the one node in expanded.
func expandedKeys(t *testing.T, expanded []any) []any {
	t.Helper()
	if len(expanded) != 1 {
		t.Fatalf("expanded to %d nodes, want 1", len(expanded))
	}
	keys, _ := expanded[0].(map[string]any)[secAssertionMethod].([]any)
	return keys
}

// TestActorEd25519KeySurvivesExpansion: a peer that reads our actor through a JSON-LD
// processor (Fedify does) finds the Ed25519 Multikey under the security vocabulary's IRIs,
// with only the contexts we name preloaded.
func TestActorEd25519KeySurvivesExpansion(t *testing.T) {
	pub := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32)).Public().(ed25519.PublicKey)
	id := "https://forge.example/actors/alice"
	actor := NewActor(ActorSpec{ID: id, Types: FollowableTypes(TypePerson), PreferredUsername: "alice",
		Inbox: id + "/inbox", Outbox: id + "/outbox", Followers: id + "/followers",
		RSAPublicKeyPEM: string(mustRead(t, "httpsig/test-key-rsa.pub.pem")), Ed25519PublicKey: pub})
	_, named := contextTerms(t, ActorContext())
	keys := expandedKeys(t, expand(t, toJSONAny(t, actor), named...))
	if len(keys) != 1 {
		t.Fatalf("expanded %s: %d values, want the one Ed25519 key", secAssertionMethod, len(keys))
	}
	key := keys[0].(map[string]any)
	if key["@id"] != Ed25519KeyID(id) {
		t.Errorf("key @id = %v, want %s", key["@id"], Ed25519KeyID(id))
	}
	if !reflect.DeepEqual(key["@type"], []any{secMultikey}) {
		t.Errorf("key @type = %v, want [%s]", key["@type"], secMultikey)
	}
	if want := []any{map[string]any{"@id": id}}; !reflect.DeepEqual(key[secController], want) {
		t.Errorf("key %s = %v, want %v", secController, key[secController], want)
	}
	want := []any{map[string]any{"@type": secMultibase, "@value": EncodeMultibaseEd25519(pub)}}
	if !reflect.DeepEqual(key[secPublicKeyMultibase], want) {
		t.Errorf("key %s = %v, want %v (expanded key: %v)", secPublicKeyMultibase, key[secPublicKeyMultibase], want, key)
	}

	// The same key under the contexts Fedify writes (did/v1 and multikey/v1) expands to
	// the same graph: our inline terms mean what theirs mean.
	fedify := map[string]any{
		"@context": []any{ActivityStreamsContext, "https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"},
		"id":       id,
		"assertionMethod": []any{map[string]any{"id": Ed25519KeyID(id), "type": TypeMultikey, "controller": id,
			"publicKeyMultibase": EncodeMultibaseEd25519(pub)}},
	}
	theirs := expandedKeys(t, expand(t, fedify, ActivityStreamsContext, "https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"))
	if !reflect.DeepEqual(keys, theirs) {
		t.Errorf("our key expands to %v, Fedify's form to %v", keys, theirs)
	}
}
