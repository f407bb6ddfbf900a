package gitea_test

import (
	"encoding/base64"
	"net/http"
	"testing"
	"time"

	sdk "code.gitea.io/sdk/gitea"

	"github.com/fedforge/fedforge/internal/forge"
	"github.com/fedforge/fedforge/internal/forge/giteatest"
)

// TestReopenPullAgainstRealGitea: with write:repository, ReopenPull reopens a closed pull
// request whose branch is there, succeeds on an open one, and refuses (404, no change) one
// whose branch was deleted, and (409) a merged one.
func TestReopenPullAgainstRealGitea(t *testing.T) {
	g := giteatest.Start(t)
	ctx := t.Context()
	repo, _, err := g.Client.CreateRepo(sdk.CreateRepoOption{Name: "reopened", AutoInit: true, Readme: "Default", DefaultBranch: "main"})
	if err != nil {
		t.Fatalf("create repository: %v", err)
	}
	bot := g.CreateUser(t, "fedforge", "write:repository")
	if _, err := g.Client.AddCollaborator(g.AdminUser, repo.Name, bot.Name, sdk.AddCollaboratorOption{Permission: ptr(sdk.AccessModeWrite)}); err != nil {
		t.Fatalf("collaborator: %v", err)
	}
	w := newWriter(t, g.URL, repo.FullName, bot.Token, loopbackClient())
	fr := forge.Repository{FullName: repo.FullName}
	pull := func(branch, file string) int64 {
		t.Helper()
		if _, _, err := g.Client.CreateFile(g.AdminUser, repo.Name, file, sdk.CreateFileOptions{
			FileOptions: sdk.FileOptions{BranchName: "main", NewBranchName: branch, Message: "Change " + file},
			Content:     base64.StdEncoding.EncodeToString([]byte(file + "\n"))}); err != nil {
			t.Fatalf("commit on %s: %v", branch, err)
		}
		pr, _, err := g.Client.CreatePullRequest(g.AdminUser, repo.Name, sdk.CreatePullRequestOption{Head: branch, Base: "main", Title: file})
		if err != nil {
			t.Fatalf("pull request from %s: %v", branch, err)
		}
		return pr.Index
	}
	state := func(n int64) sdk.StateType {
		t.Helper()
		pr, _, err := g.Client.GetPullRequest(g.AdminUser, repo.Name, n)
		if err != nil {
			t.Fatal(err)
		}
		return pr.State
	}
	closePull := func(n int64) {
		t.Helper()
		closed := sdk.StateClosed
		if _, _, err := g.Client.EditPullRequest(g.AdminUser, repo.Name, n, sdk.EditPullRequestOption{State: &closed}); err != nil {
			t.Fatal(err)
		}
	}
	refused := func(what string, err error, status int) {
		t.Helper()
		if e, ok := forge.AsAPIError(err); !ok || e.StatusCode != status {
			t.Errorf("ReopenPull of %s = %v, want an APIError %d", what, err, status)
		}
	}

	n := pull("federated/b.example/alice/fix", "fix.txt")
	if err := w.ReopenPull(ctx, fr, n); err != nil || state(n) != sdk.StateOpen {
		t.Fatalf("ReopenPull of an open pull request = %v (%s)", err, state(n))
	}
	closePull(n)
	if err := w.ReopenPull(ctx, fr, n); err != nil || state(n) != sdk.StateOpen {
		t.Fatalf("ReopenPull of a closed pull request = %v, state %s; want open", err, state(n))
	}

	gone := pull("federated/b.example/alice/gone", "gone.txt")
	closePull(gone)
	if _, _, err := g.Client.DeleteRepoBranch(g.AdminUser, repo.Name, "federated/b.example/alice/gone"); err != nil {
		t.Fatal(err)
	}
	refused("a pull request without its branch", w.ReopenPull(ctx, fr, gone), http.StatusNotFound)
	if s := state(gone); s != sdk.StateClosed {
		t.Errorf("pull request without its branch is %s after the refused reopen, want closed", s)
	}

	merged := pull("federated/b.example/alice/merged", "merged.txt")
	var mergeErr error
	for range 50 { // Gitea checks mergeability in a queue before it merges
		var ok bool
		if ok, _, mergeErr = g.Client.MergePullRequest(g.AdminUser, repo.Name, merged, sdk.MergePullRequestOption{Style: sdk.MergeStyleMerge}); ok && mergeErr == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if mergeErr != nil {
		t.Fatalf("merge: %v", mergeErr)
	}
	refused("a merged pull request", w.ReopenPull(ctx, fr, merged), http.StatusConflict)
}
