package giteatest

import (
	"testing"

	"code.gitea.io/sdk/gitea"
)

// CreateOrg creates a public organization owned by the administrator.
func (i *Instance) CreateOrg(t testing.TB, name string) *gitea.Organization {
	t.Helper()
	org, _, err := i.Client.CreateOrg(gitea.CreateOrgOption{Name: name, Visibility: gitea.VisibleTypePublic})
	if err != nil {
		t.Fatalf("giteatest: create organization %s on %s: %v", name, i.URL, err)
	}
	return org
}

// CreateOrgWebhook adds a Gitea-type webhook to organization org, which Gitea fires for
// events in every repository of the organization and for the creation of repositories
// ("repository"), signed with secret like a repository's hook.
func (i *Instance) CreateOrgWebhook(t testing.TB, org, target, secret string, events ...string) *gitea.Hook {
	t.Helper()
	hook, _, err := i.Client.CreateOrgHook(org, gitea.CreateHookOption{
		Type:   gitea.HookTypeGitea,
		Config: map[string]string{"url": target, "content_type": "json", "secret": secret},
		Events: events,
		Active: true,
	})
	if err != nil {
		t.Fatalf("giteatest: webhook on organization %s at %s: %v", org, i.URL, err)
	}
	return hook
}

// CreateOrgRepo creates a repository of organization org with "main" as its default
// branch; opt.Name is required, other fields as given (AutoInit, Private, Template...).
func (i *Instance) CreateOrgRepo(t testing.TB, org string, opt gitea.CreateRepoOption) *gitea.Repository {
	t.Helper()
	if opt.DefaultBranch == "" {
		opt.DefaultBranch = "main"
	}
	repo, _, err := i.Client.CreateOrgRepo(org, opt)
	if err != nil {
		t.Fatalf("giteatest: create repository %s/%s on %s: %v", org, opt.Name, i.URL, err)
	}
	return repo
}

// SetTopics replaces the topics of owner/repo. Gitea sends no webhook for it.
func (i *Instance) SetTopics(t testing.TB, owner, repo string, topics ...string) {
	t.Helper()
	if _, err := i.Client.SetRepoTopics(owner, repo, topics); err != nil {
		t.Fatalf("giteatest: topics of %s/%s on %s: %v", owner, repo, i.URL, err)
	}
}
