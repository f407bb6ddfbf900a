package sources

import (
	"bytes"
	"encoding/json"
	"github.com/fedforge/fedforge/internal/forge"
	"net/url"
	"strings"
	"testing"
	"time"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/store"
)

const testActorID = "https://fed.example/actors/releases-demo"

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func parseCase(t *testing.T, tc payloadCase) *forge.Event {
	t.Helper()
	body := readTestdata(t, tc.file)
	ev, err := ParseWebhook(tc.forge, signedHeaders(tc.forge, tc.event, body, testSecret), body, testSecret)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// goldenActivities is what a golden file holds: the documents exactly as they will be
// served (the activity, and the object at its own id when there is one).
type goldenActivities struct {
	Activities []json.RawMessage `json:"activities"`
	Objects    []json.RawMessage `json:"objects,omitempty"`
}

func golden(t *testing.T, acts []store.Activity) []byte {
	t.Helper()
	var g goldenActivities
	for _, a := range acts {
		g.Activities = append(g.Activities, a.Raw)
		if a.Object != nil {
			g.Objects = append(g.Objects, a.Object.Raw)
		}
	}
	var buf bytes.Buffer
	raw, err := json.Marshal(g)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		t.Fatal(err)
	}
	buf.WriteByte('\n')
	return buf.Bytes()
}

// TestRenderGolden renders every real payload and compares with testdata/golden, and
// checks each Create the way Mastodon reads it.
func TestRenderGolden(t *testing.T) {
	for name, tc := range payloads {
		t.Run(name, func(t *testing.T) {
			ev := parseCase(t, tc)
			acts, err := Render(ev, Target{ActorID: testActorID, Visibility: fedv1.VisibilityPublic, PushNote: true, Now: testNow})
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, strings.ReplaceAll(name, " ", "_")+".json", golden(t, acts))
			for _, a := range acts {
				checkStored(t, a)
				if a.Type == activitypub.TypeCreate {
					checkMastodonShows(t, a.Raw, fedv1.VisibilityPublic)
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
	if doc.ID != a.ID || !doc.Type.Has(a.Type) || doc.Actor.ID() != a.ActorID || a.ActorID != testActorID {
		t.Errorf("store row %s/%s/%s does not match document %s/%v/%s", a.ID, a.Type, a.ActorID, doc.ID, doc.Type, doc.Actor.ID())
	}
	if !a.Visibility.Valid() || a.Published.IsZero() {
		t.Errorf("row visibility %q published %v", a.Visibility, a.Published)
	}
	if !strings.HasPrefix(a.ID, testActorID+"/activities/") {
		t.Errorf("activity id %s is not under the actor", a.ID)
	}
	if a.Object != nil {
		if a.ObjectID != a.Object.ID || doc.Object.ID() != a.ObjectID || !strings.HasPrefix(a.ObjectID, testActorID+"/objects/") {
			t.Errorf("object id %q / %q / %q disagree", a.ObjectID, a.Object.ID, doc.Object.ID())
		}
		obj, err := activitypub.DecodeObject(a.Object.Raw)
		if err != nil || obj.ID != a.ObjectID || len(obj.Context) == 0 {
			t.Errorf("stored object does not stand alone: %v %+v", err, obj)
		}
	}
}

// checkMastodonShows reads a Create the way Mastodon's ActivityPub::Activity::Create
// does and fails when Mastodon would drop it or show it differently than meant: the
// object must be an embedded Note on the actor's host, attributed to the actor, with
// content that survives Mastodon's sanitiser, addressed for the visibility, and its
// hashtags must be Hashtag tags with a "#name".
func checkMastodonShows(t *testing.T, raw []byte, vis fedv1.Visibility) {
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
	if SanitizeHTML(note.Content) != note.Content {
		t.Errorf("content is changed by the sanitiser, so Mastodon would show something else:\n%s\n%s", note.Content, SanitizeHTML(note.Content))
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
	if !equalStrings(note.To.IDs(), act.To.IDs()) || !equalStrings(note.Cc.IDs(), act.Cc.IDs()) {
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

// TestRenderAddressing checks the three visibilities on a release and on a push.
func TestRenderAddressing(t *testing.T) {
	release := parseCase(t, payloads["gitlab release"])
	push := parseCase(t, payloads["gitlab push"])
	tests := map[string]struct {
		vis       fedv1.Visibility
		storeVis  store.Visibility
		to, cc    []string
		publicOut bool
	}{
		"public":    {fedv1.VisibilityPublic, store.Public, []string{activitypub.PublicIRI}, []string{testActorID + "/followers"}, true},
		"default":   {"", store.Public, []string{activitypub.PublicIRI}, []string{testActorID + "/followers"}, true},
		"unlisted":  {fedv1.VisibilityUnlisted, store.Unlisted, []string{testActorID + "/followers"}, []string{activitypub.PublicIRI}, true},
		"followers": {fedv1.VisibilityFollowers, store.Followers, []string{testActorID + "/followers"}, nil, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			for _, ev := range []*forge.Event{release, push} {
				acts, err := Render(ev, Target{ActorID: testActorID, Visibility: tc.vis, PushNote: true, Now: testNow})
				if err != nil {
					t.Fatal(err)
				}
				for _, a := range acts {
					if a.Visibility != tc.storeVis {
						t.Errorf("%s: visibility %q, want %q", a.Type, a.Visibility, tc.storeVis)
					}
					doc, _ := activitypub.DecodeObject(a.Raw)
					if !equalStrings(doc.To.IDs(), tc.to) || !equalStrings(doc.Cc.IDs(), tc.cc) {
						t.Errorf("%s: to %v cc %v, want %v %v", a.Type, doc.To.IDs(), doc.Cc.IDs(), tc.to, tc.cc)
					}
					if doc.IsPublic() != tc.publicOut {
						t.Errorf("%s: public %t", a.Type, doc.IsPublic())
					}
					if a.Type == activitypub.TypeCreate {
						checkMastodonShows(t, a.Raw, tc.vis)
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
	for name, tc := range payloads {
		t.Run(name, func(t *testing.T) {
			ev := parseCase(t, tc)
			a, err := Render(ev, Target{ActorID: testActorID, PushNote: true, Now: testNow})
			if err != nil {
				t.Fatal(err)
			}
			ev.DeliveryID = "another-delivery"
			b, err := Render(ev, Target{ActorID: testActorID, PushNote: true, Now: testNow.Add(time.Hour)})
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
	for name, tc := range payloads {
		acts, err := Render(parseCase(t, tc), Target{ActorID: testActorID, PushNote: true, Now: testNow})
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
// explicitly, and never a Repository actor.
func TestRenderPushNote(t *testing.T) {
	push := parseCase(t, payloads["github push new branch"])
	tests := map[string]struct {
		actorType fedv1.ActorType
		events    []string
		want      []string
	}{
		"service selecting push":    {fedv1.ActorService, []string{"Release", "Push"}, []string{"Push", "Create"}},
		"service with all events":   {fedv1.ActorService, nil, []string{"Push"}},
		"repository selecting push": {fedv1.ActorRepository, []string{"Push"}, []string{"Push"}},
		"person selecting push":     {fedv1.ActorPerson, []string{"Push"}, []string{"Push", "Create"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			actor := &fedv1.FederatedActor{Spec: fedv1.FederatedActorSpec{PreferredUsername: "releases-demo", Type: tc.actorType}}
			src := &fedv1.EventSource{Name: "gh", Type: fedv1.SourceGitHub, Events: tc.events}
			target := TargetFor("https://fed.example", actor, src, testNow)
			if target.ActorID != testActorID {
				t.Fatalf("actor id %s", target.ActorID)
			}
			acts, err := Render(push, target)
			if err != nil {
				t.Fatal(err)
			}
			var types []string
			for _, a := range acts {
				types = append(types, a.Type)
			}
			if !equalStrings(types, tc.want) {
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
			if pushDoc.HashAfter != push.After || pushDoc.ASContext.ID() != testActorID {
				t.Errorf("hashAfter %q context %q", pushDoc.HashAfter, pushDoc.ASContext.ID())
			}
		})
	}
}

// TestRenderHostileContent: notes and titles from a forge are text; markup in them is
// shown escaped, and HTML bodies (feeds) lose everything Mastodon would strip.
func TestRenderHostileContent(t *testing.T) {
	ev := &forge.Event{
		Forge: fedv1.SourceGitHub, Kind: forge.KindRelease, Action: forge.ActionPublished, Version: `v1"><script>alert(1)</script>`,
		Title: `<img src=x onerror=alert(1)>`, URL: `javascript:alert(1)`,
		Repository: forge.Repository{Name: "evil<b>", FullName: "a/evil", WebURL: "https://forge.example/a/evil"},
		Body:       "<script>alert(1)</script>\n\n## Changes\n- fix https://forge.example/x?a=1&b=2.",
		BodyFormat: forge.FormatMarkdown, Identity: "release|a/evil|v1",
	}
	acts, err := Render(ev, Target{ActorID: testActorID, Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	note, _ := activitypub.DecodeObject(acts[0].Object.Raw)
	for _, bad := range []string{"<script", "<img", "javascript:", "<b>"} {
		if strings.Contains(note.Content, bad) {
			t.Errorf("content contains %q:\n%s", bad, note.Content)
		}
	}
	for _, want := range []string{"&lt;script&gt;", "• fix", `<a href="https://forge.example/x?a=1&amp;b=2">`, "Changes"} {
		if !strings.Contains(note.Content, want) {
			t.Errorf("content lacks %q:\n%s", want, note.Content)
		}
	}
	if len(note.URL) != 0 {
		t.Errorf("javascript: URL kept as url %v", note.URL.IDs())
	}
	checkMastodonShows(t, acts[0].Raw, fedv1.VisibilityPublic)

	html := &forge.Event{Forge: fedv1.SourceFeed, Kind: forge.KindRelease, Version: "1.0", Identity: "feed|x",
		Repository: forge.Repository{Name: "proj"}, BodyFormat: forge.FormatHTML,
		Body: `<p onclick="x()">Fixed <b>bugs</b><iframe src="https://e.example"></iframe></p><style>p{}</style><a href="javascript:x">y</a>`}
	acts, err = Render(html, Target{ActorID: testActorID, Now: testNow})
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

func TestExcerptTruncates(t *testing.T) {
	long := strings.Repeat("word ", 200)
	tests := map[string]struct {
		body   string
		format forge.Format
	}{
		"plain":    {long, forge.FormatPlain},
		"markdown": {"# Title\n\n" + long, forge.FormatMarkdown},
		"html":     {"<p>" + long + "</p><p>second</p>", forge.FormatHTML},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			out := excerptHTML(tc.body, tc.format, excerptLimit)
			text := htmlText(out)
			if n := len([]rune(text)); n > excerptLimit+1 || n < excerptLimit/2 {
				t.Errorf("excerpt of %d characters:\n%s", n, out)
			}
			if !strings.HasSuffix(text, "…") {
				t.Errorf("truncation not marked: %q", text[len(text)-20:])
			}
			if SanitizeHTML(out) != out {
				t.Errorf("excerpt is not clean HTML: %s", out)
			}
		})
	}
}

func TestHashtagName(t *testing.T) {
	tests := map[string]string{
		"release-webhook-example": "ReleaseWebhookExample",
		"Hello-World":             "HelloWorld",
		"feed-rs":                 "FeedRs",
		"gitlab_test":             "Gitlab_test",
		"démo app":                "DémoApp",
		"2048":                    "",
		"---":                     "",
		"v2.0":                    "V20",
	}
	for in, want := range tests {
		if got := hashtagName(in); got != want {
			t.Errorf("hashtagName(%q) = %q, want %q", in, got, want)
		}
	}
}
