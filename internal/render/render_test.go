package render_test

import (
	"bytes"
	"github.com/fedforge/fedforge/internal/forge"
	"github.com/fedforge/fedforge/internal/forge/forgetest"
	"github.com/fedforge/fedforge/internal/forge/registry"
	"github.com/fedforge/fedforge/internal/render"
	"github.com/fedforge/fedforge/internal/render/rendertest"
	"slices"
	"strings"
	"testing"
	"time"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/store"
)

func parseCase(t *testing.T, tc forgetest.Payload) *forge.Event {
	t.Helper()
	body := forgetest.Read(t, tc.File)
	ev, err := registry.ParseWebhook(tc.Forge, forgetest.SignedHeaders(tc.Forge, tc.Event, body, forgetest.Secret), body, forgetest.Secret)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// TestRenderGolden renders every real payload and compares with testdata/golden, and
// checks each Create the way Mastodon reads it.
func TestRenderGolden(t *testing.T) {
	for name, tc := range forgetest.Payloads {
		t.Run(name, func(t *testing.T) {
			ev := parseCase(t, tc)
			acts, err := render.Render(ev, render.Target{ActorID: rendertest.ActorID, Visibility: fedv1.VisibilityPublic, PushNote: true, Now: rendertest.Now})
			if err != nil {
				t.Fatal(err)
			}
			rendertest.CheckGolden(t, strings.ReplaceAll(name, " ", "_")+".json", rendertest.Golden(t, acts))
			for _, a := range acts {
				checkStored(t, a)
				if a.Type == activitypub.TypeCreate {
					rendertest.MastodonShows(t, a.Raw, fedv1.VisibilityPublic)
				}
			}
		})
	}
}

// checkStored verifies the store row matches the document it carries.
func checkStored(t *testing.T, a store.Activity) {
	t.Helper()
	doc, err := activitypub.DecodeObject(a.Raw)
	if err != nil {
		t.Fatalf("activity does not decode: %v", err)
	}
	if doc.ID != a.ID || !doc.Type.Has(a.Type) || doc.Actor.ID() != a.ActorID || a.ActorID != rendertest.ActorID {
		t.Errorf("store row %s/%s/%s does not match document %s/%v/%s", a.ID, a.Type, a.ActorID, doc.ID, doc.Type, doc.Actor.ID())
	}
	if !a.Visibility.Valid() || a.Published.IsZero() {
		t.Errorf("row visibility %q published %v", a.Visibility, a.Published)
	}
	if !strings.HasPrefix(a.ID, rendertest.ActorID+"/activities/") {
		t.Errorf("activity id %s is not under the actor", a.ID)
	}
	if a.Object != nil {
		// Notes of comments live under their Ticket (urls.Comment), everything else under objects/.
		under := strings.HasPrefix(a.ObjectID, rendertest.ActorID+"/objects/") || strings.HasPrefix(a.ObjectID, rendertest.ActorID+"/issues/") ||
			strings.HasPrefix(a.ObjectID, rendertest.ActorID+"/merge-requests/")
		if a.ObjectID != a.Object.ID || doc.Object.ID() != a.ObjectID || !under {
			t.Errorf("object id %q / %q / %q disagree", a.ObjectID, a.Object.ID, doc.Object.ID())
		}
		obj, err := activitypub.DecodeObject(a.Object.Raw)
		if err != nil || obj.ID != a.ObjectID || len(obj.Context) == 0 {
			t.Errorf("stored object does not stand alone: %v %+v", err, obj)
		}
	}
}

// TestRenderAddressing checks the three visibilities on a release and on a push.
func TestRenderAddressing(t *testing.T) {
	release := parseCase(t, forgetest.Payloads["gitlab release"])
	push := parseCase(t, forgetest.Payloads["gitlab push"])
	tests := map[string]struct {
		vis       fedv1.Visibility
		storeVis  store.Visibility
		to, cc    []string
		publicOut bool
	}{
		"public":    {fedv1.VisibilityPublic, store.Public, []string{activitypub.PublicIRI}, []string{rendertest.ActorID + "/followers"}, true},
		"default":   {"", store.Public, []string{activitypub.PublicIRI}, []string{rendertest.ActorID + "/followers"}, true},
		"unlisted":  {fedv1.VisibilityUnlisted, store.Unlisted, []string{rendertest.ActorID + "/followers"}, []string{activitypub.PublicIRI}, true},
		"followers": {fedv1.VisibilityFollowers, store.Followers, []string{rendertest.ActorID + "/followers"}, nil, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			for _, ev := range []*forge.Event{release, push} {
				acts, err := render.Render(ev, render.Target{ActorID: rendertest.ActorID, Visibility: tc.vis, PushNote: true, Now: rendertest.Now})
				if err != nil {
					t.Fatal(err)
				}
				for _, a := range acts {
					if a.Visibility != tc.storeVis {
						t.Errorf("%s: visibility %q, want %q", a.Type, a.Visibility, tc.storeVis)
					}
					doc, _ := activitypub.DecodeObject(a.Raw)
					if !slices.Equal(doc.To.IDs(), tc.to) || !slices.Equal(doc.Cc.IDs(), tc.cc) {
						t.Errorf("%s: to %v cc %v, want %v %v", a.Type, doc.To.IDs(), doc.Cc.IDs(), tc.to, tc.cc)
					}
					if doc.IsPublic() != tc.publicOut {
						t.Errorf("%s: public %t", a.Type, doc.IsPublic())
					}
					if a.Type == activitypub.TypeCreate {
						rendertest.MastodonShows(t, a.Raw, tc.vis)
					}
				}
			}
		})
	}
}

// TestRenderDeterministic: the same event rendered at another time (a forge retry an
// hour later) has the same ids and the same documents, so Publish stays idempotent;
// another event has other ids.
func TestRenderDeterministic(t *testing.T) {
	for name, tc := range forgetest.Payloads {
		t.Run(name, func(t *testing.T) {
			ev := parseCase(t, tc)
			a, err := render.Render(ev, render.Target{ActorID: rendertest.ActorID, PushNote: true, Now: rendertest.Now})
			if err != nil {
				t.Fatal(err)
			}
			ev.DeliveryID = "another-delivery"
			b, err := render.Render(ev, render.Target{ActorID: rendertest.ActorID, PushNote: true, Now: rendertest.Now.Add(time.Hour)})
			if err != nil {
				t.Fatal(err)
			}
			if len(a) != len(b) {
				t.Fatalf("%d vs %d activities", len(a), len(b))
			}
			for i := range a {
				if a[i].ID != b[i].ID {
					t.Errorf("id changed: %s vs %s", a[i].ID, b[i].ID)
				}
				if !ev.Time.IsZero() && !bytes.Equal(a[i].Raw, b[i].Raw) {
					t.Errorf("document changed although the forge dated the event")
				}
			}
		})
	}
	ids := map[string]string{}
	for name, tc := range forgetest.Payloads {
		acts, err := render.Render(parseCase(t, tc), render.Target{ActorID: rendertest.ActorID, PushNote: true, Now: rendertest.Now})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range acts {
			if other, dup := ids[a.ID]; dup && !strings.HasPrefix(name, "forgejo") && !strings.HasPrefix(other, "forgejo") {
				t.Errorf("%s and %s share id %s", name, other, a.ID)
			}
			ids[a.ID] = name
		}
	}
}

// TestRenderPushNote checks who gets a Note for a push: only sources that list Push
// explicitly, whatever the actor's type.
func TestRenderPushNote(t *testing.T) {
	push := parseCase(t, forgetest.Payloads["github push new branch"])
	tests := map[string]struct {
		actorType fedv1.ActorType
		events    []string
		want      []string
	}{
		"service selecting push":     {fedv1.ActorService, []string{"Release", "Push"}, []string{"Push", "Create"}},
		"service with all events":    {fedv1.ActorService, nil, []string{"Push"}},
		"repository selecting push":  {fedv1.ActorRepository, []string{"Push"}, []string{"Push", "Create"}},
		"repository with all events": {fedv1.ActorRepository, nil, []string{"Push"}},
		"person selecting push":      {fedv1.ActorPerson, []string{"Push"}, []string{"Push", "Create"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			actor := &fedv1.FederatedActor{Spec: fedv1.FederatedActorSpec{PreferredUsername: "releases-demo", Type: tc.actorType}}
			src := &fedv1.EventSource{Name: "gh", Type: fedv1.SourceGitHub, Events: tc.events}
			target := render.TargetFor("https://fed.example", actor, src, rendertest.Now)
			if target.ActorID != rendertest.ActorID {
				t.Fatalf("actor id %s", target.ActorID)
			}
			acts, err := render.Render(push, target)
			if err != nil {
				t.Fatal(err)
			}
			var types []string
			for _, a := range acts {
				types = append(types, a.Type)
			}
			if !slices.Equal(types, tc.want) {
				t.Fatalf("rendered %v, want %v", types, tc.want)
			}
			pushDoc, _ := activitypub.DecodeObject(acts[0].Raw)
			if pushDoc.Target.Object == nil || pushDoc.Target.Object.Name != "master" || !pushDoc.Target.Object.Type.Has(activitypub.TypeBranch) {
				t.Errorf("push target %+v, want Branch master", pushDoc.Target)
			}
			commits := pushDoc.Object.Object
			if commits == nil || !commits.Type.Has(activitypub.TypeOrderedCollection) || len(commits.OrderedItems) != 1 ||
				commits.OrderedItems[0].Object.Hash != "6113728f27ae82c7b1a177c8d03f9e96e0adf246" {
				t.Errorf("push object %+v, want an OrderedCollection of the commit", commits)
			}
			if pushDoc.HashAfter != push.After || pushDoc.ASContext.ID() != rendertest.ActorID {
				t.Errorf("hashAfter %q context %q", pushDoc.HashAfter, pushDoc.ASContext.ID())
			}
		})
	}
}

// TestRenderHostileContent: titles from a forge are text, markup in them is shown
// escaped; Markdown bodies are rendered without their raw HTML, and HTML bodies (feeds)
// lose everything Mastodon would strip.
func TestRenderHostileContent(t *testing.T) {
	ev := &forge.Event{
		Forge: fedv1.SourceGitHub, Kind: forge.KindRelease, Action: forge.ActionPublished, Version: `v1"><script>alert(1)</script>`,
		Title: `<img src=x onerror=alert(1)>`, URL: `javascript:alert(1)`,
		Repository: forge.Repository{Name: "evil<b>", FullName: "a/evil", WebURL: "https://forge.example/a/evil"},
		Body:       "<script>alert(1)</script>\n\n## Changes\n- fix https://forge.example/x?a=1&b=2.",
		BodyFormat: forge.FormatMarkdown, Identity: "release|a/evil|v1",
	}
	acts, err := render.Render(ev, render.Target{ActorID: rendertest.ActorID, Now: rendertest.Now})
	if err != nil {
		t.Fatal(err)
	}
	note, _ := activitypub.DecodeObject(acts[0].Object.Raw)
	for _, bad := range []string{"<script", "<img", "javascript:", "<b>"} {
		if strings.Contains(note.Content, bad) {
			t.Errorf("content contains %q:\n%s", bad, note.Content)
		}
	}
	for _, want := range []string{"&lt;script&gt;", "<li>fix ", `<a href="https://forge.example/x?a=1&amp;b=2">`, "<p><strong>Changes</strong></p>"} {
		if !strings.Contains(note.Content, want) {
			t.Errorf("content lacks %q:\n%s", want, note.Content)
		}
	}
	if len(note.URL) != 0 {
		t.Errorf("javascript: URL kept as url %v", note.URL.IDs())
	}
	rendertest.MastodonShows(t, acts[0].Raw, fedv1.VisibilityPublic)

	html := &forge.Event{Forge: fedv1.SourceFeed, Kind: forge.KindRelease, Version: "1.0", Identity: "feed|x",
		Repository: forge.Repository{Name: "proj"}, BodyFormat: forge.FormatHTML,
		Body: `<p onclick="x()">Fixed <b>bugs</b><iframe src="https://e.example"></iframe></p><style>p{}</style><a href="javascript:x">y</a>`}
	acts, err = render.Render(html, render.Target{ActorID: rendertest.ActorID, Now: rendertest.Now})
	if err != nil {
		t.Fatal(err)
	}
	note, _ = activitypub.DecodeObject(acts[0].Object.Raw)
	for _, bad := range []string{"onclick", "iframe", "style", "javascript"} {
		if strings.Contains(note.Content, bad) {
			t.Errorf("HTML body kept %q:\n%s", bad, note.Content)
		}
	}
	if !strings.Contains(note.Content, "<p>Fixed <b>bugs</b></p>") {
		t.Errorf("allowed markup lost:\n%s", note.Content)
	}
}
