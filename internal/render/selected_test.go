package render_test

import (
	"testing"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/forge"
	"github.com/fedforge/fedforge/internal/render"
)

// TestSelectedReleaseSupersedesTag: a forge announces a release's new tag as a tag push
// of its own, so a source that publishes releases does not publish tags (one post per
// release); a source that selects Tag without Release still does.
func TestSelectedReleaseSupersedesTag(t *testing.T) {
	tests := map[string]struct {
		events       []string
		tag, release bool
	}{
		"everything":        {nil, false, true},
		"release and tag":   {[]string{"Release", "Tag"}, false, true},
		"tag alone":         {[]string{"Tag"}, true, false},
		"tag and push":      {[]string{"Tag", "Push"}, true, false},
		"release and issue": {[]string{"Release", "Issue"}, false, true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			src := &fedv1.EventSource{Name: "s", Type: fedv1.SourceGitea, Events: tc.events}
			if got := render.Selected(src, forge.KindTag); got != tc.tag {
				t.Errorf("Tag selected = %v, want %v", got, tc.tag)
			}
			if got := render.Selected(src, forge.KindRelease); got != tc.release {
				t.Errorf("Release selected = %v, want %v", got, tc.release)
			}
		})
	}
}
