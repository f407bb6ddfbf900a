package feed

import (
	"strings"
	"testing"

	"github.com/mmcdole/gofeed"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/forge"
	"github.com/fedforge/fedforge/internal/forge/forgetest"
	"github.com/fedforge/fedforge/internal/render"
	"github.com/fedforge/fedforge/internal/render/rendertest"
)

// TestActivityFeedEntries reads the activity feed of a user of a real Gitea 1.27.3
// (testdata/feeds/gitea_fedforge-admin_atom.xml, recorded by TestRealGiteaFeeds) and
// checks that each entry is rendered as what it is: a push, an issue, a comment, a pull
// request are posted with the forge's own title and never as "released"; only the
// release is a release. The releases feed of the same repository stays releases.
func TestActivityFeedEntries(t *testing.T) {
	f, err := gofeed.NewParser().ParseString(string(forgetest.Read(t, "feeds/gitea_fedforge-admin_atom.xml")))
	if err != nil {
		t.Fatal(err)
	}
	src := &fedv1.EventSource{Name: "f", Type: fedv1.SourceFeed, Feed: &fedv1.FeedSource{URL: "http://127.0.0.1:40299/fedforge-admin.atom"}}
	want := map[string]forge.Kind{
		"commented on issue": forge.KindComment, "opened issue": forge.KindIssue, "closed issue": forge.KindIssue,
		"created repository": forge.KindActivity, "released": forge.KindRelease, "pushed tag": forge.KindTag,
		"pushed to": forge.KindPush, "created branch": forge.KindPush, "created pull request": forge.KindMergeRequest,
	}
	seen := 0
	for _, e := range feedEntries(f) {
		ev := feedEvent(f, e, src)
		title := render.HTMLText(e.item.Title)
		var verb string
		for v := range want {
			if strings.Contains(title, v) && len(v) > len(verb) {
				verb = v
			}
		}
		if verb == "" {
			t.Errorf("unexpected entry %q", title)
			continue
		}
		seen++
		if ev.Kind != want[verb] {
			t.Errorf("%q read as %s, want %s", title, ev.Kind, want[verb])
		}
		acts, err := render.Render(ev, render.Target{ActorID: rendertest.ActorID, Now: rendertest.Now})
		if err != nil {
			t.Fatalf("%q: %v", title, err)
		}
		rendertest.MastodonShows(t, acts[0].Raw, fedv1.VisibilityPublic)
		note := activityNote(t, acts[0].Raw)
		if verb != "released" && strings.Contains(note.Content, " released") {
			t.Errorf("%q posted as a release: %s", title, note.Content)
		}
		if !strings.Contains(render.HTMLText(note.Content), title) {
			t.Errorf("post of %q does not say it: %s", title, note.Content)
		}
	}
	if seen != len(f.Items) || seen < 9 {
		t.Errorf("checked %d of %d entries", seen, len(f.Items))
	}

	rel, err := gofeed.NewParser().ParseString(string(forgetest.Read(t, "feeds/gitea_fedforge-admin_feedy_releases_rss.xml")))
	if err != nil {
		t.Fatal(err)
	}
	relSrc := &fedv1.EventSource{Name: "r", Type: fedv1.SourceFeed, Feed: &fedv1.FeedSource{URL: "http://127.0.0.1:40299/fedforge-admin/feedy/releases.rss"}}
	for _, e := range feedEntries(rel) {
		ev := feedEvent(rel, e, relSrc)
		acts, err := render.Render(ev, render.Target{ActorID: rendertest.ActorID, Now: rendertest.Now})
		if err != nil {
			t.Fatal(err)
		}
		if note := activityNote(t, acts[0].Raw); ev.Kind != forge.KindRelease || ev.Headline != "" || !strings.Contains(note.Content, "released") {
			t.Errorf("release entry %q rendered as %s: %s", e.item.Title, ev.Kind, note.Content)
		}
	}
}

// TestClassifyGitHubActivity: GitHub's activity feeds name the event type in the entry id.
func TestClassifyGitHubActivity(t *testing.T) {
	for id, want := range map[string]forge.Kind{
		"tag:github.com,2008:PushEvent/1":         forge.KindPush,
		"tag:github.com,2008:IssueCommentEvent/2": forge.KindComment,
		"tag:github.com,2008:WatchEvent/3":        forge.KindStar,
		"tag:github.com,2008:ForkEvent/4":         forge.KindFork,
		"tag:github.com,2008:ReleaseEvent/5":      forge.KindRelease,
		"tag:github.com,2008:CreateEvent/6":       forge.KindActivity,
		"tag:github.com,2008:Repository/7/v1.0":   forge.KindRelease,
	} {
		if got := classify(&gofeed.Item{GUID: id, Title: "x"}, false); got != want {
			t.Errorf("%s read as %s, want %s", id, got, want)
		}
	}
	if got := classify(&gofeed.Item{GUID: "tag:github.com,2008:PushEvent/1"}, true); got != forge.KindRelease {
		t.Errorf("an entry of a releases feed read as %s", got)
	}
}

func activityNote(t *testing.T, raw []byte) *activitypub.Object {
	t.Helper()
	d, err := activitypub.DecodeObject(raw)
	if err != nil || d.Object.Object == nil {
		t.Fatalf("not a Create of a Note: %v", err)
	}
	return d.Object.Object
}
