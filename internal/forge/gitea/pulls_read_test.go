package gitea_test

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"testing"
	"time"

	sdk "code.gitea.io/sdk/gitea"

	"github.com/fedforge/fedforge/internal/forge"
	"github.com/fedforge/fedforge/internal/forge/giteatest"
)

// TestPullReaderAgainstRealGitea: with a read:repository token, PullRequest reads an
// open pull request (title, body, page and diff, author, head and base branches in the
// repository), the merged state with its merge commit and time, and answers an issue's
// number and an unknown number with a 404 APIError carrying the host.
func TestPullReaderAgainstRealGitea(t *testing.T) {
	g := giteatest.Start(t)
	ctx := t.Context()
	repo, _, err := g.Client.CreateRepo(sdk.CreateRepoOption{Name: "read-pulls", AutoInit: true, Readme: "Default", DefaultBranch: "main"})
	if err != nil {
		t.Fatalf("create repository: %v", err)
	}
	if _, _, err := g.Client.CreateFile(g.AdminUser, repo.Name, "fix.txt", sdk.CreateFileOptions{
		FileOptions: sdk.FileOptions{BranchName: "main", NewBranchName: "fix", Message: "Fix it"},
		Content:     base64.StdEncoding.EncodeToString([]byte("fixed\n"))}); err != nil {
		t.Fatalf("commit on the branch: %v", err)
	}
	pr, _, err := g.Client.CreatePullRequest(g.AdminUser, repo.Name, sdk.CreatePullRequestOption{Head: "fix", Base: "main", Title: "Fix it", Body: "Please **merge**."})
	if err != nil {
		t.Fatalf("open pull request: %v", err)
	}
	issue, _, err := g.Client.CreateIssue(g.AdminUser, repo.Name, sdk.CreateIssueOption{Title: "Not a pull request"})
	if err != nil {
		t.Fatalf("open issue: %v", err)
	}
	bot := g.CreateUser(t, "reader", "read:repository")
	_, err = g.Client.AddCollaborator(g.AdminUser, repo.Name, bot.Name, sdk.AddCollaboratorOption{Permission: ptr(sdk.AccessModeRead)})
	if err != nil {
		t.Fatalf("collaborator: %v", err)
	}
	w := newWriter(t, g.URL, repo.FullName, bot.Token, loopbackClient())
	fr := forge.Repository{FullName: repo.FullName}

	got, err := w.PullRequest(ctx, fr, pr.Index)
	if err != nil {
		t.Fatalf("PullRequest with read:repository: %v", err)
	}
	want := forge.PullRequest{Number: pr.Index, Title: "Fix it", Body: "Please **merge**.", URL: pr.HTMLURL, DiffURL: pr.DiffURL,
		AuthorLogin: g.AdminUser, AuthorURL: g.URL + "/" + g.AdminUser,
		Head: forge.PullBranch{Name: "fix", RepoFullName: repo.FullName, RepoURL: repo.HTMLURL},
		Base: forge.PullBranch{Name: "main", RepoFullName: repo.FullName, RepoURL: repo.HTMLURL}}
	if got.Created.IsZero() || got.Updated.IsZero() || !got.ClosedAt.IsZero() || !got.MergedAt.IsZero() {
		t.Errorf("times of an open pull request: %+v", got)
	}
	got.Created, got.Updated = time.Time{}, time.Time{}
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
		t.Errorf("PullRequest =\n%+v\nwant\n%+v", got, want)
	}

	for _, n := range []int64{issue.Index, 999} {
		_, err := w.PullRequest(ctx, fr, n)
		if e, ok := forge.AsAPIError(err); !ok || e.StatusCode != http.StatusNotFound || e.Host == "" {
			t.Errorf("PullRequest(#%d, no pull request) = %v; want a 404 APIError with the host", n, err)
		}
	}

	var merged bool
	for deadline := time.Now().Add(60 * time.Second); !merged && time.Now().Before(deadline); { // a bound for Gitea's mergeability queue
		merged, _, _ = g.Client.MergePullRequest(g.AdminUser, repo.Name, pr.Index, sdk.MergePullRequestOption{Style: sdk.MergeStyleMerge})
		if !merged {
			time.Sleep(200 * time.Millisecond)
		}
	}
	if !merged {
		t.Fatal("Gitea did not merge the pull request")
	}
	after, _, err := g.Client.GetPullRequest(g.AdminUser, repo.Name, pr.Index)
	if err != nil || after.MergedCommitID == nil {
		t.Fatalf("merged pull request: %+v, %v", after, err)
	}
	got, err = w.PullRequest(ctx, fr, pr.Index)
	if err != nil || !got.Closed || !got.Merged || got.MergeCommit != *after.MergedCommitID || got.MergedAt.IsZero() {
		t.Errorf("PullRequest of a merged pull request = %+v, %v; want closed, merged as %s", got, err, *after.MergedCommitID)
	}
}
