package gitea

import (
	"context"
	"fmt"
	"net/http"

	sdk "code.gitea.io/sdk/gitea"

	"github.com/fedforge/fedforge/internal/forge"
)

var _ forge.PullReopener = (*Writer)(nil)

// ReopenPull reopens pull request number of repo after checking that it was not merged
// and that its head branch is still there (Gitea would reopen a pull request without a
// branch and then show it as broken). Three API calls at most; the pulls API needs
// write:repository, as opening did.
func (w *Writer) ReopenPull(ctx context.Context, repo forge.Repository, number int64) error {
	c, owner, name, err := w.repoClient(ctx, repo)
	if err != nil {
		return err
	}
	op := fmt.Sprintf("reopening pull request #%d of %s", number, repo.FullName)
	pr, resp, err := c.GetPullRequest(owner, name, number)
	if err != nil {
		return w.fail(op, resp, err)
	}
	switch {
	case pr.HasMerged:
		return &forge.APIError{Host: w.host, Op: op, StatusCode: http.StatusConflict, Message: "it was merged"}
	case pr.State == sdk.StateOpen:
		return nil
	case pr.Head == nil || pr.Head.Ref == "":
		return &forge.APIError{Host: w.host, Op: op, StatusCode: http.StatusNotFound, Message: "it has no head branch"}
	}
	if _, resp, err := c.GetRepoBranch(owner, name, pr.Head.Ref); err != nil {
		if resp != nil && resp.StatusCode == http.StatusNotFound {
			return &forge.APIError{Host: w.host, Op: op, StatusCode: http.StatusNotFound, Message: "its branch " + pr.Head.Ref + " is gone"}
		}
		return w.fail(op, resp, err)
	}
	open := sdk.StateOpen
	if _, resp, err := c.EditPullRequest(owner, name, number, sdk.EditPullRequestOption{State: &open}); err != nil {
		return w.fail(op, resp, err)
	}
	return nil
}
