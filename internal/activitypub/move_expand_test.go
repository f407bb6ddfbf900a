package activitypub

import (
	"reflect"
	"testing"
)

// Expanded IRIs of Mastodon's account-migration terms: its context defines movedTo and
// alsoKnownAs as as:movedTo and as:alsoKnownAs, both with "@type": "@id".
const (
	asMovedTo     = "https://www.w3.org/ns/activitystreams#movedTo"
	asAlsoKnownAs = "https://www.w3.org/ns/activitystreams#alsoKnownAs"
)

// TestActorMoveTermsSurviveExpansion: a peer that reads our actor through a JSON-LD
// processor finds movedTo and alsoKnownAs under the IRIs Mastodon's context gives them,
// as node references (not strings), with only the contexts we name preloaded; and
// Mastodon's own inline definitions expand to the same graph.
func TestActorMoveTermsSurviveExpansion(t *testing.T) {
	id := "https://forge.example/actors/old"
	newID, alias := "https://elsewhere.example/users/new", "https://before.example/@old"
	actor := NewActor(ActorSpec{ID: id, Types: FollowableTypes(TypePerson), PreferredUsername: "old",
		Inbox: id + "/inbox", Outbox: id + "/outbox", Followers: id + "/followers",
		RSAPublicKeyPEM: string(mustRead(t, "httpsig/test-key-rsa.pub.pem")), MovedTo: newID, AlsoKnownAs: []string{alias}})
	_, named := contextTerms(t, ActorContext())
	ours := expand(t, toJSONAny(t, actor), named...)
	if len(ours) != 1 {
		t.Fatalf("expanded to %d nodes", len(ours))
	}
	node := ours[0].(map[string]any)
	if want := []any{map[string]any{"@id": newID}}; !reflect.DeepEqual(node[asMovedTo], want) {
		t.Errorf("%s = %v, want %v", asMovedTo, node[asMovedTo], want)
	}
	if want := []any{map[string]any{"@id": alias}}; !reflect.DeepEqual(node[asAlsoKnownAs], want) {
		t.Errorf("%s = %v, want %v", asAlsoKnownAs, node[asAlsoKnownAs], want)
	}

	mastodon := map[string]any{
		"@context": []any{ActivityStreamsContext, map[string]any{
			"movedTo":     map[string]any{"@id": "as:movedTo", "@type": "@id"},
			"alsoKnownAs": map[string]any{"@id": "as:alsoKnownAs", "@type": "@id"},
		}},
		"id": id, "movedTo": newID, "alsoKnownAs": []any{alias},
	}
	theirs := expand(t, mastodon, ActivityStreamsContext)[0].(map[string]any)
	for _, term := range []string{asMovedTo, asAlsoKnownAs} {
		if !reflect.DeepEqual(node[term], theirs[term]) {
			t.Errorf("%s: ours %v, Mastodon's %v", term, node[term], theirs[term])
		}
	}
}
