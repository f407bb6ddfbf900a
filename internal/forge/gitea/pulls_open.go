package gitea

import (
	"context"
	"fmt"
	"strings"

	sdk "code.gitea.io/sdk/gitea"

	"github.com/fedforge/fedforge/internal/forge"
)

var _ forge.PullOpener = (*Writer)(nil)

// gitUser is the user name git sends with the token as password. Gitea and Forgejo look
// the token up and take its user, whatever name comes with it (services/auth/basic.go),
// so no API call (and no read:user scope) is spent on learning the token's login.
const gitUser = "fedforge"

// PullBase reads the repository (clone URL, default branch): one API call, made once per
// federated merge request or update.
func (w *Writer) PullBase(ctx context.Context, repo forge.Repository) (forge.PullBase, error) {
	c, owner, name, err := w.repoClient(ctx, repo)
	if err != nil {
		return forge.PullBase{}, err
	}
	r, resp, err := c.GetRepo(owner, name)
	if err != nil {
		return forge.PullBase{}, w.fail("reading repository "+repo.FullName, resp, err)
	}
	return forge.PullBase{CloneURL: r.CloneURL, DefaultBranch: r.DefaultBranch, Username: gitUser}, nil
}

// FindPullByKey looks for the hidden key marker among the newest pull requests of repo,
// open or closed. One API call.
func (w *Writer) FindPullByKey(ctx context.Context, repo forge.Repository, key forge.IdempotencyKey) (forge.Ref, bool, error) {
	c, owner, name, err := w.repoClient(ctx, repo)
	if err != nil {
		return forge.Ref{}, false, err
	}
	prs, resp, err := c.ListRepoPullRequests(owner, name, sdk.ListPullRequestsOptions{
		ListOptions: sdk.ListOptions{PageSize: recoveryWindow}, State: sdk.StateAll, Sort: "recentupdate"})
	if err != nil {
		return forge.Ref{}, false, w.fail("listing pull requests of "+repo.FullName, resp, err)
	}
	mark := marker(key)
	for _, pr := range prs {
		if strings.Contains(pr.Body, mark) {
			return forge.Ref{Number: pr.Index, URL: pr.HTMLURL}, true, nil
		}
	}
	return forge.Ref{}, false, nil
}

// PullState reads pull request number of repo.
func (w *Writer) PullState(ctx context.Context, repo forge.Repository, number int64) (forge.PullState, error) {
	c, owner, name, err := w.repoClient(ctx, repo)
	if err != nil {
		return forge.PullState{}, err
	}
	pr, resp, err := c.GetPullRequest(owner, name, number)
	if err != nil {
		return forge.PullState{}, w.fail(fmt.Sprintf("reading pull request #%d of %s", number, repo.FullName), resp, err)
	}
	return forge.PullState{Open: pr.State == sdk.StateOpen, Merged: pr.HasMerged}, nil
}
