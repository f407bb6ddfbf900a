package rendertest

import (
	"net/url"
	"slices"
	"strings"
	"testing"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/render"
)

// MastodonShows reads a Create the way Mastodon's ActivityPub::Activity::Create
// does and fails when Mastodon would drop it or show it differently than meant: the
// object must be an embedded Note on the actor's host, attributed to the actor, with
// content that survives Mastodon's sanitiser, addressed for the visibility, and its
// hashtags must be Hashtag tags with a "#name".
func MastodonShows(t *testing.T, raw []byte, vis fedv1.Visibility) {
	t.Helper()
	act, err := activitypub.DecodeObject(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !act.Type.Has(activitypub.TypeCreate) {
		t.Fatalf("type %v, want Create", act.Type)
	}
	note := act.Object.Object
	if note == nil {
		t.Fatal("Create does not embed its object")
	}
	if !note.Type.Has(activitypub.TypeNote) {
		t.Errorf("object type %v: Mastodon shows Note in full", note.Type)
	}
	if strings.TrimSpace(note.Content) == "" {
		t.Error("empty content")
	}
	if render.SanitizeHTML(note.Content) != note.Content {
		t.Errorf("content is changed by the sanitiser, so Mastodon would show something else:\n%s\n%s", note.Content, render.SanitizeHTML(note.Content))
	}
	if host(note.ID) != host(act.Actor.ID()) || host(act.ID) != host(act.Actor.ID()) {
		t.Errorf("ids %s, %s not on the actor's host %s", act.ID, note.ID, act.Actor.ID())
	}
	if len(note.AttributedTo) != 1 || note.AttributedTo[0].ID() != act.Actor.ID() {
		t.Errorf("attributedTo %v, want the actor", note.AttributedTo.IDs())
	}
	if note.Published.IsZero() {
		t.Error("no published date")
	}
	if len(note.To)+len(note.Cc) == 0 {
		t.Fatal("note has no audience")
	}
	followers := act.Actor.ID() + "/followers"
	switch vis {
	case fedv1.VisibilityPublic:
		if !note.To.Contains(activitypub.PublicIRI) || !note.Cc.Contains(followers) {
			t.Errorf("public: to %v cc %v", note.To.IDs(), note.Cc.IDs())
		}
	case fedv1.VisibilityUnlisted:
		if !note.To.Contains(followers) || !note.Cc.Contains(activitypub.PublicIRI) {
			t.Errorf("unlisted: to %v cc %v", note.To.IDs(), note.Cc.IDs())
		}
	case fedv1.VisibilityFollowers:
		if note.IsPublic() || !note.To.Contains(followers) {
			t.Errorf("followers-only: to %v cc %v", note.To.IDs(), note.Cc.IDs())
		}
	}
	if !slices.Equal(note.To.IDs(), act.To.IDs()) || !slices.Equal(note.Cc.IDs(), act.Cc.IDs()) {
		t.Error("activity and object addressing differ")
	}
	for _, tag := range note.Tag {
		o := tag.Object
		if o == nil || !o.Type.Has(activitypub.TypeHashtag) || !strings.HasPrefix(o.Name, "#") || o.Href == "" {
			t.Errorf("tag %+v is not a Mastodon Hashtag", tag)
			continue
		}
		if !strings.Contains(note.Content, ">"+strings.TrimPrefix(o.Name, "#")+"</span>") {
			t.Errorf("hashtag %s not linked in the content", o.Name)
		}
	}
	for _, att := range note.Attachment {
		if att.Object != nil && len(att.Object.URL) > 0 {
			t.Errorf("attachment %v has a url; Mastodon would try to show it as media", att.Object.Type)
		}
	}
}

func host(iri string) string {
	u, err := url.Parse(iri)
	if err != nil {
		return ""
	}
	return u.Host
}
