package render_test

import (
	"strings"
	"testing"
	"time"

	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/forge"
	"github.com/fedforge/fedforge/internal/render"
)

// TestRenderRepository: a repository created is posted as "who created what in #topic"
// for a topic actor (the topics its source selects in the sentence, the repository's
// other topics and name as hashtags after it, each once), as "who created what" for an
// organization actor, and as "what is now in #topic" when a later event first showed
// the topic; the description is escaped, and every hashtag is also a Hashtag tag.
func TestRenderRepository(t *testing.T) {
	repo := forge.Repository{Name: "rocket", FullName: "acme/rocket", WebURL: "https://git.example/acme/rocket",
		Description: "Rockets <b>fast</b>", Created: "2026-12-03T10:00:00Z"}
	base := forge.Event{Forge: "Gitea", Kind: forge.KindRepository, Action: forge.ActionCreated, Repository: repo,
		Topics: []string{"space", "rust", "rocket"}, URL: repo.WebURL,
		Actor:    forge.Person{Username: "alice", URL: "https://git.example/alice"},
		Identity: forge.RepositoryIdentity(repo)}
	tag := func(name string) string {
		return `<a href="https://ff.example/tags/` + strings.ToLower(name) + `" class="mention hashtag" rel="tag">#<span>` + name + `</span></a>`
	}
	tests := map[string]struct {
		action, sentence string
		topics           []string
		after            []string // hashtags after the sentence
	}{
		"topic actor": {forge.ActionCreated, `<a href="https://git.example/alice">alice</a> created <a href="https://git.example/acme/rocket">acme/rocket</a> in ` + tag("Space"),
			[]string{"SPACE"}, []string{"Rust", "Rocket"}},
		"organization actor": {forge.ActionCreated, `<a href="https://git.example/alice">alice</a> created <a href="https://git.example/acme/rocket">acme/rocket</a></p>`,
			nil, []string{"Space", "Rust", "Rocket"}},
		"seen later": {forge.ActionTopicSeen, `<p><a href="https://git.example/acme/rocket">acme/rocket</a> is now in ` + tag("Space") + `, ` + tag("Rust") + `</p>`,
			[]string{"space", "rust"}, []string{"Rocket"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ev := base
			ev.Action = tc.action
			acts, err := render.Render(&ev, render.Target{ActorID: "https://ff.example/actors/a", Topics: tc.topics, Now: time.Now()})
			if err != nil || len(acts) != 1 {
				t.Fatalf("Render: %d activities, %v", len(acts), err)
			}
			d, err := activitypub.DecodeObject(acts[0].Raw)
			if err != nil {
				t.Fatal(err)
			}
			note := d.Object.Object
			if !strings.Contains(note.Content, tc.sentence) {
				t.Errorf("content %s\nwant %s", note.Content, tc.sentence)
			}
			if !strings.Contains(note.Content, "Rockets &lt;b&gt;fast&lt;/b&gt;") {
				t.Errorf("description not escaped: %s", note.Content)
			}
			_, rest, _ := strings.Cut(note.Content, "</p>")
			for _, name := range tc.after {
				if strings.Count(note.Content, tag(name)) != 1 || !strings.Contains(rest, tag(name)) {
					t.Errorf("hashtag #%s not once after the sentence: %s", name, note.Content)
				}
			}
			if len(note.Tag) != 3 {
				t.Errorf("%d Hashtag tags, want one per topic and the name: %+v", len(note.Tag), note.Tag)
			}
			if ids := note.URL.IDs(); len(ids) != 1 || ids[0] != repo.WebURL {
				t.Errorf("note links %v, want %s", ids, repo.WebURL)
			}
		})
	}
}
