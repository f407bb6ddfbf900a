package gitea

import (
	"context"
	"fmt"
	"time"

	sdk "code.gitea.io/sdk/gitea"

	"github.com/fedforge/fedforge/internal/forge"
)

var _ forge.PullReader = (*Writer)(nil)

// PullRequest reads pull request number of repo (one GET of /repos/{o}/{r}/pulls/{n}).
// Gitea and Forgejo answer 404 for an issue's number there: an issue is no merge request.
func (w *Writer) PullRequest(ctx context.Context, repo forge.Repository, number int64) (forge.PullRequest, error) {
	c, owner, name, err := w.repoClient(ctx, repo)
	if err != nil {
		return forge.PullRequest{}, err
	}
	pr, resp, err := c.GetPullRequest(owner, name, number)
	if err != nil {
		return forge.PullRequest{}, w.fail(fmt.Sprintf("reading pull request #%d of %s", number, repo.FullName), resp, err)
	}
	out := forge.PullRequest{Number: pr.Index, Title: pr.Title, Body: pr.Body, URL: pr.HTMLURL, DiffURL: pr.DiffURL,
		Closed: pr.State == sdk.StateClosed || pr.HasMerged, Merged: pr.HasMerged,
		Head: pullBranch(pr.Head), Base: pullBranch(pr.Base)}
	if pr.MergedCommitID != nil && pr.HasMerged {
		out.MergeCommit = *pr.MergedCommitID
	}
	out.Created, out.Updated, out.ClosedAt, out.MergedAt = timeOf(pr.Created), timeOf(pr.Updated), timeOf(pr.Closed), timeOf(pr.Merged)
	if pr.Poster != nil {
		out.AuthorLogin, out.AuthorURL = pr.Poster.UserName, pr.Poster.HTMLURL
	}
	return out, nil
}

// timeOf is *t, or the zero time for nil.
func timeOf(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

func pullBranch(b *sdk.PRBranchInfo) forge.PullBranch {
	if b == nil {
		return forge.PullBranch{}
	}
	out := forge.PullBranch{Name: b.Ref}
	if b.Repository != nil {
		out.RepoFullName, out.RepoURL = b.Repository.FullName, b.Repository.HTMLURL
	}
	return out
}
