package rendertest

import (
	"errors"
	"strings"
	"testing"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/forge"
	"github.com/fedforge/fedforge/internal/forge/forgetest"
	"github.com/fedforge/fedforge/internal/forge/registry"
	"github.com/fedforge/fedforge/internal/render"
)

// CheckWebhook is the body of every webhook fuzz target: it parses body as a delivery
// of event from srcType, signed with forgetest.Secret, through the registry, and checks
// what every accepted webhook must satisfy: an identity and a known kind, a rendering
// without error, JSON that decodes, and content the sanitiser keeps.
func CheckWebhook(t *testing.T, srcType fedv1.SourceType, event string, body []byte) {
	ev, err := registry.ParseWebhook(srcType, forgetest.SignedHeaders(srcType, event, body, forgetest.Secret), body, forgetest.Secret)
	if err != nil {
		if !errors.Is(err, forge.ErrIgnoredEvent) && !errors.Is(err, forge.ErrMalformed) && !errors.Is(err, forge.ErrTooLarge) {
			t.Fatalf("unexpected error class: %v", err)
		}
		return
	}
	switch ev.Kind {
	case forge.KindRelease, forge.KindTag, forge.KindPush, forge.KindMergeRequest, forge.KindIssue, forge.KindComment, forge.KindFork, forge.KindStar:
	default:
		t.Fatalf("unknown kind %q", ev.Kind)
	}
	if ev.Identity == "" || ev.Forge != srcType {
		t.Fatalf("event without identity or forge: %+v", ev)
	}
	if forge.WrittenByFedforge(ev.Body) && (ev.Kind == forge.KindComment || ev.Action == forge.ActionOpened) {
		t.Fatalf("a %s Fedforge wrote was read back: %+v", ev.Kind, ev)
	}
	acts, err := render.Render(ev, render.Target{ActorID: ActorID, PushNote: true, Now: Now})
	if ev.Kind == forge.KindStar && errors.Is(err, forge.ErrIgnoredEvent) {
		return // counted, never posted
	}
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	for _, a := range acts {
		doc, err := activitypub.DecodeObject(a.Raw)
		if err != nil {
			t.Fatalf("rendered activity does not decode: %v", err)
		}
		if o := doc.Object.Object; o != nil && o.Content != "" && render.SanitizeHTML(o.Content) != o.Content {
			t.Fatalf("content not stable under the sanitiser:\n%q\n%q", o.Content, render.SanitizeHTML(o.Content))
		}
		if doc.Summary != "" && render.SanitizeHTML(doc.Summary) != doc.Summary {
			t.Fatalf("summary not stable under the sanitiser:\n%q\n%q", doc.Summary, render.SanitizeHTML(doc.Summary))
		}
		if !strings.HasPrefix(a.ID, ActorID+"/activities/") {
			t.Fatalf("activity id %s", a.ID)
		}
	}
}

// FuzzWebhooks runs a webhook fuzz target for srcType: the real payloads of that forge
// as seeds, CheckWebhook as the body.
func FuzzWebhooks(f *testing.F, srcType fedv1.SourceType) {
	forgetest.AddSeeds(f, srcType)
	f.Fuzz(func(t *testing.T, event string, body []byte) { CheckWebhook(t, srcType, event, body) })
}
