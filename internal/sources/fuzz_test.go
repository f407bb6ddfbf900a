package sources

import (
	"encoding/json"
	"errors"
	"github.com/fedforge/fedforge/internal/forge"
	"strings"
	"testing"

	"github.com/mmcdole/gofeed"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
)

// Fuzz targets for every parser of remote input in this package. Bodies are signed
// with the right secret inside the target, so the fuzzer explores the payload parsers
// rather than bouncing off authentication; FuzzWebhookSignature attacks authentication
// itself. Seeds are the real payloads in testdata. Run one with, for example,
//
//	go test ./internal/sources/ -run '^$' -fuzz FuzzGitLabWebhook -fuzztime 60s

// fuzzWebhook checks what every accepted webhook must satisfy: an identity and a known
// kind, a rendering without error, JSON that decodes, and content the sanitiser keeps.
func fuzzWebhook(t *testing.T, srcType fedv1.SourceType, event string, body []byte) {
	ev, err := ParseWebhook(srcType, signedHeaders(srcType, event, body, testSecret), body, testSecret)
	if err != nil {
		if !errors.Is(err, forge.ErrIgnoredEvent) && !errors.Is(err, forge.ErrMalformed) && !errors.Is(err, forge.ErrTooLarge) {
			t.Fatalf("unexpected error class: %v", err)
		}
		return
	}
	switch ev.Kind {
	case forge.KindRelease, forge.KindTag, forge.KindPush, forge.KindMergeRequest, forge.KindIssue:
	default:
		t.Fatalf("unknown kind %q", ev.Kind)
	}
	if ev.Identity == "" || ev.Forge != srcType {
		t.Fatalf("event without identity or forge: %+v", ev)
	}
	acts, err := Render(ev, Target{ActorID: testActorID, PushNote: true, Now: testNow})
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	for _, a := range acts {
		doc, err := activitypub.DecodeObject(a.Raw)
		if err != nil {
			t.Fatalf("rendered activity does not decode: %v", err)
		}
		if o := doc.Object.Object; o != nil && o.Content != "" && SanitizeHTML(o.Content) != o.Content {
			t.Fatalf("content not stable under the sanitiser:\n%q\n%q", o.Content, SanitizeHTML(o.Content))
		}
		if !strings.HasPrefix(a.ID, testActorID+"/activities/") {
			t.Fatalf("activity id %s", a.ID)
		}
	}
}

func addSeeds(f *testing.F, srcType fedv1.SourceType) {
	for _, tc := range payloads {
		if tc.forge == srcType || (srcType == fedv1.SourceForgejo && tc.forge == fedv1.SourceGitea) {
			f.Add(tc.event, readTestdata(f, tc.file))
		}
	}
}

func FuzzGitLabWebhook(f *testing.F) {
	addSeeds(f, fedv1.SourceGitLab)
	f.Fuzz(func(t *testing.T, event string, body []byte) { fuzzWebhook(t, fedv1.SourceGitLab, event, body) })
}

func FuzzGiteaWebhook(f *testing.F) {
	addSeeds(f, fedv1.SourceGitea)
	f.Fuzz(func(t *testing.T, event string, body []byte) { fuzzWebhook(t, fedv1.SourceGitea, event, body) })
}

func FuzzForgejoWebhook(f *testing.F) {
	addSeeds(f, fedv1.SourceForgejo)
	f.Fuzz(func(t *testing.T, event string, body []byte) { fuzzWebhook(t, fedv1.SourceForgejo, event, body) })
}

func FuzzGitHubWebhook(f *testing.F) {
	addSeeds(f, fedv1.SourceGitHub)
	f.Fuzz(func(t *testing.T, event string, body []byte) { fuzzWebhook(t, fedv1.SourceGitHub, event, body) })
}

// FuzzWebhookSignature: with an arbitrary authentication header, a webhook is accepted
// only when the header is exactly what the forge would send for this body and secret.
func FuzzWebhookSignature(f *testing.F) {
	body := readTestdata(f, "github/release_published.json")
	f.Add(uint8(0), string(testSecret))
	f.Add(uint8(1), hmacHex(body, testSecret))
	f.Add(uint8(2), strings.ToUpper(hmacHex(body, testSecret)))
	f.Add(uint8(3), "sha256="+hmacHex(body, testSecret))
	f.Add(uint8(3), "sha256= "+hmacHex(body, testSecret))
	f.Fuzz(func(t *testing.T, which uint8, value string) {
		forges := []fedv1.SourceType{fedv1.SourceGitLab, fedv1.SourceGitea, fedv1.SourceForgejo, fedv1.SourceGitHub}
		srcType := forges[int(which)%len(forges)]
		h := signedHeaders(srcType, "release", body, testSecret)
		var header, valid string
		switch srcType {
		case fedv1.SourceGitLab:
			h.Set(headerGitLabEvent, "Release Hook")
			header, valid = headerGitLabToken, string(testSecret)
		case fedv1.SourceGitea:
			header, valid = headerGiteaSignature, hmacHex(body, testSecret)
		case fedv1.SourceForgejo:
			h.Del(headerGiteaSignature)
			header, valid = headerForgejoSignature, hmacHex(body, testSecret)
		case fedv1.SourceGitHub:
			header, valid = headerGitHubSignature, "sha256="+hmacHex(body, testSecret)
		}
		h.Set(header, value)
		_, err := ParseWebhook(srcType, h, body, testSecret)
		accepted := !errors.Is(err, forge.ErrUnauthorized)
		// What each forge's check must accept: GitLab the exact token; Gitea and Forgejo
		// the hex HMAC in any case, surrounding space ignored; GitHub the same after the
		// literal "sha256=" prefix.
		var want bool
		switch srcType {
		case fedv1.SourceGitLab:
			want = value == valid
		case fedv1.SourceGitea, fedv1.SourceForgejo:
			want = strings.EqualFold(strings.TrimSpace(value), valid)
		case fedv1.SourceGitHub:
			rest, ok := strings.CutPrefix(value, "sha256=")
			want = ok && strings.EqualFold(strings.TrimSpace(rest), strings.TrimPrefix(valid, "sha256="))
		}
		if accepted != want {
			t.Fatalf("%s %s %q: accepted=%t, want %t (%v)", srcType, header, value, accepted, want, err)
		}
	})
}

// FuzzOutboxActivity: whatever a client posts, the outbox either refuses it or publishes
// an activity of an accepted type, by our actor, with sanitised content and no audience
// beyond the public collection and the followers.
func FuzzOutboxActivity(f *testing.F) {
	f.Add([]byte(`{"type":"Note","to":["https://www.w3.org/ns/activitystreams#Public"],"content":"<p>hi <script>x</script></p>"}`))
	f.Add([]byte(`{"type":"Create","object":{"type":"Article","name":"n","content":"c","cc":["as:Public"],"tag":[{"type":"Hashtag","name":"#x","href":"https://a/b"}]},"to":["https://fed.example/actors/releases-demo/followers"]}`))
	f.Add([]byte(`{"type":"Announce","object":{"id":"https://m.example/s/1"},"to":"Public"}`))
	f.Add([]byte(`{"type":["Note","Page"],"content":"x","to":[],"cc":[null,"https://fed.example/actors/releases-demo/followers"]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		a, err := BuildOutboxActivity(body, testActorID, "c2s|fuzz", testNow)
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
		if doc.Actor.ID() != testActorID || doc.ID != ActivityID(testActorID, "c2s|fuzz") {
			t.Fatalf("actor %s id %s", doc.Actor.ID(), doc.ID)
		}
		for _, id := range append(doc.To.IDs(), doc.Cc.IDs()...) {
			if id != activitypub.PublicIRI && id != testActorID+"/followers" {
				t.Fatalf("addressed %s", id)
			}
		}
		if o := doc.Object.Object; o != nil {
			if SanitizeHTML(o.Content) != o.Content || strings.TrimSpace(o.Content) == "" {
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

// FuzzFeedEntries: any document gofeed accepts yields entries with ids, events that
// render, and content the sanitiser keeps.
func FuzzFeedEntries(f *testing.F) {
	f.Add(readTestdata(f, "feeds/github_releases.atom"))
	f.Add([]byte(`<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><link>https://forge.example/o/r/releases</link><item><title>v1</title><guid>1</guid><description>&lt;b&gt;x&lt;/b&gt;</description></item></channel></rss>`))
	f.Add([]byte(`{"version":"https://jsonfeed.org/version/1.1","title":"t","items":[{"id":"1","content_html":"<p>x</p>","url":"javascript:alert(1)"}]}`))
	src := &fedv1.EventSource{Name: "f", Type: fedv1.SourceFeed, Feed: &fedv1.FeedSource{URL: "https://forge.example/releases.atom"}}
	f.Fuzz(func(t *testing.T, doc []byte) {
		feed, err := gofeed.NewParser().ParseString(string(doc))
		if err != nil {
			return
		}
		for _, e := range feedEntries(feed) {
			if e.id == "" || len(e.id) > maxEntryID+len("sha256:") {
				t.Fatalf("entry id %q", e.id)
			}
			acts, err := Render(feedEvent(feed, e, src), Target{ActorID: testActorID, Now: testNow})
			if err != nil {
				t.Fatalf("render: %v", err)
			}
			note, err := activitypub.DecodeObject(acts[0].Object.Raw)
			if err != nil {
				t.Fatal(err)
			}
			if SanitizeHTML(note.Content) != note.Content {
				t.Fatalf("content not stable under the sanitiser:\n%q", note.Content)
			}
			for _, u := range note.URL.IDs() {
				if !isHTTPURL(u) {
					t.Fatalf("url %q", u)
				}
			}
		}
	})
}
