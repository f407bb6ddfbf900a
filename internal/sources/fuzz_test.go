package sources

import (
	"encoding/json"
	"github.com/fedforge/fedforge/internal/render"
	"github.com/fedforge/fedforge/internal/render/rendertest"
	"strings"
	"testing"

	"github.com/fedforge/fedforge/internal/activitypub"
)

// FuzzOutboxActivity: whatever a client posts, the outbox either refuses it or publishes
// an activity of an accepted type, by our actor, with sanitised content and no audience
// beyond the public collection and the followers.
func FuzzOutboxActivity(f *testing.F) {
	f.Add([]byte(`{"type":"Note","to":["https://www.w3.org/ns/activitystreams#Public"],"content":"<p>hi <script>x</script></p>"}`))
	f.Add([]byte(`{"type":"Create","object":{"type":"Article","name":"n","content":"c","cc":["as:Public"],"tag":[{"type":"Hashtag","name":"#x","href":"https://a/b"}]},"to":["https://fed.example/actors/releases-demo/followers"]}`))
	f.Add([]byte(`{"type":"Announce","object":{"id":"https://m.example/s/1"},"to":"Public"}`))
	f.Add([]byte(`{"type":["Note","Page"],"content":"x","to":[],"cc":[null,"https://fed.example/actors/releases-demo/followers"]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		a, err := BuildOutboxActivity(body, rendertest.ActorID, "c2s|fuzz", rendertest.Now)
		if err != nil {
			return
		}
		if a.Type != activitypub.TypeCreate && a.Type != activitypub.TypeAnnounce {
			t.Fatalf("published a %s", a.Type)
		}
		doc, err := activitypub.DecodeObject(a.Raw)
		if err != nil {
			t.Fatalf("output does not decode: %v", err)
		}
		if doc.Actor.ID() != rendertest.ActorID || doc.ID != render.ActivityID(rendertest.ActorID, "c2s|fuzz") {
			t.Fatalf("actor %s id %s", doc.Actor.ID(), doc.ID)
		}
		for _, id := range append(doc.To.IDs(), doc.Cc.IDs()...) {
			if id != activitypub.PublicIRI && id != rendertest.ActorID+"/followers" {
				t.Fatalf("addressed %s", id)
			}
		}
		if o := doc.Object.Object; o != nil {
			if render.SanitizeHTML(o.Content) != o.Content || strings.TrimSpace(o.Content) == "" {
				t.Fatalf("content %q", o.Content)
			}
			var raw map[string]json.RawMessage
			_ = json.Unmarshal(a.Object.Raw, &raw)
			if _, ok := raw["bcc"]; ok {
				t.Fatal("bcc kept")
			}
		}
	})
}
