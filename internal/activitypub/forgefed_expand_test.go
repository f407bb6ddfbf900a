package activitypub

import (
	"reflect"
	"testing"
)

// ForgeFed and AS2 IRIs of the Repository properties (https://forgefed.org/ns, the
// ActivityStreams vocabulary).
const (
	forgeRepository       = "https://forgefed.org/ns#Repository"
	forgeCloneURI         = "https://forgefed.org/ns#cloneUri"
	forgeForks            = "https://forgefed.org/ns#forks"
	forgeTicketsTrackedBy = "https://forgefed.org/ns#ticketsTrackedBy"
	forgeForkedFrom       = "https://forgefed.org/ns#forkedFrom"
	asLikes               = "https://www.w3.org/ns/activitystreams#likes"
)

// TestRepositoryForgeFedTermsExpand: a Repository actor as we write it expands, with only
// the contexts it names preloaded, to the ForgeFed IRIs of cloneUri, forks,
// ticketsTrackedBy and forkedFrom (and AS2 likes), each an IRI node; and the same
// properties written under the official ForgeFed context (testdata/contexts/forgefed.jsonld)
// expand to the same graph, so our inline terms mean what ForgeFed's context says.
func TestRepositoryForgeFedTermsExpand(t *testing.T) {
	id := "https://forge.example/actors/tool"
	spec := ActorSpec{ID: id, Types: FollowableTypes(TypeRepository), PreferredUsername: "tool",
		Inbox: id + "/inbox", Outbox: id + "/outbox", Followers: id + "/followers",
		CloneURI: []string{"https://git.example/alice/tool.git"}, Forks: id + "/forks", Likes: id + "/likes",
		TicketsTrackedBy: id, ForkedFrom: "https://git.example/bob/tool"}
	_, named := contextTerms(t, ActorContext())
	ours := expand(t, toJSONAny(t, NewActor(spec)), named...)
	if len(ours) != 1 {
		t.Fatalf("expanded to %d nodes, want 1", len(ours))
	}
	node := ours[0].(map[string]any)
	types, _ := node["@type"].([]any)
	if len(types) == 0 || types[0] != forgeRepository {
		t.Errorf("@type = %v, want %s first", node["@type"], forgeRepository)
	}
	want := map[string]string{
		forgeCloneURI: spec.CloneURI[0], forgeForks: spec.Forks, forgeTicketsTrackedBy: spec.TicketsTrackedBy,
		forgeForkedFrom: spec.ForkedFrom, asLikes: spec.Likes,
	}
	for iri, v := range want {
		if got, exp := node[iri], []any{map[string]any{"@id": v}}; !reflect.DeepEqual(got, exp) {
			t.Errorf("%s = %v, want %v", iri, got, exp)
		}
	}

	// The same properties under ForgeFed's own context.
	theirs := expand(t, map[string]any{
		"@context":         []any{ActivityStreamsContext, ForgeFedContext},
		"id":               id,
		"type":             TypeRepository,
		"cloneUri":         spec.CloneURI[0],
		"forks":            spec.Forks,
		"likes":            spec.Likes,
		"ticketsTrackedBy": spec.TicketsTrackedBy,
		"forkedFrom":       spec.ForkedFrom,
	}, ActivityStreamsContext, ForgeFedContext)
	if len(theirs) != 1 {
		t.Fatalf("ForgeFed form expanded to %d nodes, want 1", len(theirs))
	}
	for iri := range want {
		if got, exp := node[iri], theirs[0].(map[string]any)[iri]; !reflect.DeepEqual(got, exp) {
			t.Errorf("%s: ours %v, under ForgeFed's context %v", iri, got, exp)
		}
	}
}
