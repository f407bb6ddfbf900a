package forgetest

import (
	"testing"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
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
