package gitlab_test

import (
	"testing"

	"github.com/fedforge/fedforge/internal/forge/forgetest"
	"github.com/fedforge/fedforge/internal/forge/gitlab"
)

func TestParseWebhookCommits(t *testing.T) {
	body := forgetest.Read(t, "gitlab/push.json")
	ev := forgetest.Parse(t, gitlab.Adapter{}, "Push Hook", body)
	if len(ev.Commits) != 2 {
		t.Fatalf("got %d commits, want 2", len(ev.Commits))
	}
	first, last := ev.Commits[0], ev.Commits[1]
	if first.ID != "b6568db1bc1dcd7f8b4d5a946b0b91f9dacd7327" || last.ID != "da1560886d4f094c3e6c9ef40349f7d38b5d27d7" {
		t.Errorf("commits not oldest first: %s, %s", first.ID, last.ID)
	}
	if first.Author.Name != "Jordi Mallach" || first.URL == "" || first.Time.IsZero() {
		t.Errorf("first commit = %+v", first)
	}
	if !ev.Time.Equal(last.Time) {
		t.Errorf("push time %v is not the newest commit's %v", ev.Time, last.Time)
	}
}
