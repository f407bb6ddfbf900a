package gitea_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"slices"
	"testing"

	sdk "code.gitea.io/sdk/gitea"

	"github.com/fedforge/fedforge/internal/forge"
	"github.com/fedforge/fedforge/internal/forge/gitea"
	"github.com/fedforge/fedforge/internal/forge/giteatest"
)

// TestRepositoryEventsFromRealGitea reads what a real Gitea 1.27 sends an
// organization-level hook for repositories: `repository` created (with no topics, even
// for a repository generated from a template with its topics), the scope header, a
// private repository marked private, a deletion ignored; and ReadTopics finds the
// template's topics through the API the moment the event arrives.
func TestRepositoryEventsFromRealGitea(t *testing.T) {
	g := giteatest.Start(t)
	const secret = "org-secret"
	c := &captor{}
	recv := httptest.NewServer(c)
	defer recv.Close()
	if _, _, err := g.Client.CreateOrg(sdk.CreateOrgOption{Name: "acme", Visibility: sdk.VisibleTypePublic}); err != nil {
		t.Fatalf("create organization on %s: %v", g.URL, err)
	}
	g.CreateOrgWebhook(t, "acme", recv.URL+"/hook", secret, "repository", "push")

	g.CreateOrgRepo(t, "acme", sdk.CreateRepoOption{Name: "seed", AutoInit: true, Template: true, Description: "Seed"})
	g.SetTopics(t, "acme", "seed", "space", "rust")
	if _, _, err := g.Client.CreateRepoFromTemplate("acme", "seed", sdk.CreateRepoFromTemplateOption{
		Owner: "acme", Name: "rocket", GitContent: true, Topics: true}); err != nil {
		t.Fatalf("generate acme/rocket on %s: %v", g.URL, err)
	}
	g.CreateOrgRepo(t, "acme", sdk.CreateRepoOption{Name: "secret", Private: true})
	if _, err := g.Client.DeleteRepo("acme", "secret"); err != nil {
		t.Fatalf("delete acme/secret on %s: %v", g.URL, err)
	}

	parse := func(d captured) (*forge.Event, error) {
		return gitea.Gitea{}.ParseWebhook(d.header, d.body, []byte(secret))
	}
	ev, err := parse(c.wait(t, "repository/created", `"full_name": "acme/rocket"`))
	if err != nil {
		t.Fatalf("parse the creation of acme/rocket: %v", err)
	}
	if ev.Kind != forge.KindRepository || ev.Action != forge.ActionCreated || ev.HookScope != "organization" {
		t.Errorf("event %s %s from a %q hook, want Repository created from an organization hook", ev.Kind, ev.Action, ev.HookScope)
	}
	if ev.Repository.WebURL != g.URL+"/acme/rocket" || ev.URL != ev.Repository.WebURL || ev.Repository.Private {
		t.Errorf("repository %+v, URL %s", ev.Repository, ev.URL)
	}
	if ev.Actor.Username != g.AdminUser || ev.Actor.URL != g.URL+"/"+g.AdminUser {
		t.Errorf("creator %+v, want %s with the Gitea profile", ev.Actor, g.AdminUser)
	}
	if ev.Identity != forge.RepositoryIdentity(ev.Repository) || ev.Repository.Created == "" {
		t.Errorf("identity %q for a repository created at %q", ev.Identity, ev.Repository.Created)
	}
	// Gitea 1.27 builds the payload from a repository whose topics it has not loaded.
	if len(ev.Topics) != 0 {
		t.Errorf("payload topics %v: Gitea now lists them, and docs/decisions.md is out of date", ev.Topics)
	}
	topics, err := gitea.ReadTopics(context.Background(), loopbackClient(), ev.Repository, "fedforge-test")
	if err != nil {
		t.Fatalf("ReadTopics: %v", err)
	}
	if slices.Sort(topics); !slices.Equal(topics, []string{"rust", "space"}) {
		t.Errorf("topics of acme/rocket read from the API: %v, want the template's [rust space]", topics)
	}

	ev, err = parse(c.wait(t, "repository/created", `"full_name": "acme/secret"`))
	if err != nil || !ev.Repository.Private {
		t.Errorf("private repository: %+v, %v, want Private", ev, err)
	}
	if _, err := parse(c.wait(t, "repository/deleted", `"full_name": "acme/secret"`)); !errors.Is(err, forge.ErrIgnoredEvent) {
		t.Errorf("deletion: %v, want ErrIgnoredEvent", err)
	}
	if _, err := gitea.ReadTopics(context.Background(), loopbackClient(), ev.Repository, "fedforge-test"); err == nil {
		t.Errorf("ReadTopics of a deleted repository succeeded")
	}
}
