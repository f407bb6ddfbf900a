package forgetest

import (
	"testing"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/forge"
)

// AddSeeds adds every payload of srcType (Gitea's for Forgejo too, which sends the
// same Payloads) to a webhook fuzz target's corpus.
func AddSeeds(f *testing.F, srcType fedv1.SourceType) {
	for _, tc := range Payloads {
		if tc.Forge == srcType || (srcType == fedv1.SourceForgejo && tc.Forge == fedv1.SourceGitea) {
			f.Add(tc.Event, Read(f, tc.File))
		}
	}
}

// Parse signs body as r's forge would send event and parses it with r, failing the test
// on any error.
func Parse(t testing.TB, r forge.Reader, event string, body []byte) *forge.Event {
	t.Helper()
	ev, err := r.ParseWebhook(SignedHeaders(r.Type(), event, body, Secret), body, Secret)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}
