package feed

import (
	"github.com/fedforge/fedforge/internal/forge/forgetest"
	"testing"

	"github.com/mmcdole/gofeed"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/render"
	"github.com/fedforge/fedforge/internal/render/rendertest"
)

// FuzzFeedEntries: any document gofeed accepts yields entries with ids, events that
// render, and content the sanitiser keeps.
func FuzzFeedEntries(f *testing.F) {
	f.Add(forgetest.Read(f, "feeds/github_releases.atom"))
	f.Add([]byte(`<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><link>https://forge.example/o/r/releases</link><item><title>v1</title><guid>1</guid><description>&lt;b&gt;x&lt;/b&gt;</description></item></channel></rss>`))
	f.Add([]byte(`{"version":"https://jsonfeed.org/version/1.1","title":"t","items":[{"id":"1","content_html":"<p>x</p>","url":"javascript:alert(1)"}]}`))
	f.Add(forgetest.Read(f, "feeds/gitea_fedforge-admin_atom.xml"))
	// Every document is read both as a release feed and as an activity feed (classify.go).
	sources := []*fedv1.EventSource{
		{Name: "f", Type: fedv1.SourceFeed, Feed: &fedv1.FeedSource{URL: "https://forge.example/releases.atom"}},
		{Name: "a", Type: fedv1.SourceFeed, Feed: &fedv1.FeedSource{URL: "https://forge.example/alice.atom"}},
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		feed, err := gofeed.NewParser().ParseString(string(doc))
		if err != nil {
			return
		}
		for _, src := range sources {
			checkFeedEntries(t, feed, src)
		}
	})
}

// checkFeedEntries checks what every entry of feed read for src must satisfy.
func checkFeedEntries(t *testing.T, feed *gofeed.Feed, src *fedv1.EventSource) {
	t.Helper()
	for _, e := range feedEntries(feed) {
		if e.id == "" || len(e.id) > maxEntryID+len("sha256:") {
			t.Fatalf("entry id %q", e.id)
		}
		acts, err := render.Render(feedEvent(feed, e, src), render.Target{ActorID: rendertest.ActorID, Now: rendertest.Now})
		if err != nil {
			t.Fatalf("render: %v", err)
		}
		note, err := activitypub.DecodeObject(acts[0].Object.Raw)
		if err != nil {
			t.Fatal(err)
		}
		if render.SanitizeHTML(note.Content) != note.Content {
			t.Fatalf("content not stable under the sanitiser:\n%q", note.Content)
		}
		for _, u := range note.URL.IDs() {
			if !render.IsHTTPURL(u) {
				t.Fatalf("url %q", u)
			}
		}
	}
}
