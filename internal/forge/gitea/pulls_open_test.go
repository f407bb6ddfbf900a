package gitea_test

import (
	"encoding/base64"
	"testing"

	sdk "code.gitea.io/sdk/gitea"

	"github.com/fedforge/fedforge/internal/forge"
	"github.com/fedforge/fedforge/internal/forge/giteatest"
)

// TestPullOpenerAgainstRealGitea: with a token holding write:repository (and nothing
// else), PullBase reads the clone URL and default branch, a pull request opened under a
// key is found again by it (and another key finds nothing), and PullState follows it
// from open to closed.
func TestPullOpenerAgainstRealGitea(t *testing.T) {
	g := giteatest.Start(t)
	ctx := t.Context()
	repo, _, err := g.Client.CreateRepo(sdk.CreateRepoOption{Name: "pulled", AutoInit: true, Readme: "Default", DefaultBranch: "main"})
	if err != nil {
		t.Fatalf("create repository: %v", err)
	}
	if _, _, err := g.Client.CreateFile(g.AdminUser, repo.Name, "fix.txt", sdk.CreateFileOptions{
		FileOptions: sdk.FileOptions{BranchName: "main", NewBranchName: "federated/b.example/alice/fix", Message: "Fix it"},
		Content:     base64.StdEncoding.EncodeToString([]byte("fixed\n"))}); err != nil {
		t.Fatalf("commit on the branch: %v", err)
	}
	bot := g.CreateUser(t, "fedforge", "write:repository")
	_, err = g.Client.AddCollaborator(g.AdminUser, repo.Name, bot.Name, sdk.AddCollaboratorOption{Permission: ptr(sdk.AccessModeWrite)})
	if err != nil {
		t.Fatalf("collaborator: %v", err)
	}
	w := newWriter(t, g.URL, repo.FullName, bot.Token, loopbackClient())
	fr := forge.Repository{FullName: repo.FullName}

	base, err := w.PullBase(ctx, fr)
	if err != nil || base.CloneURL != repo.CloneURL || base.DefaultBranch != "main" || base.Username == "" {
		t.Fatalf("PullBase = %+v, %v; want clone %s, main", base, err, repo.CloneURL)
	}
	key := forge.IdempotencyKey("https://b.example/actors/alice/offers/1")
	ref, err := w.OpenMergeRequest(ctx, fr, forge.MergeRequest{Key: key, Title: "Fix it", Body: "Please.", Format: forge.FormatMarkdown,
		Author:       forge.RemoteAuthor{Handle: "@alice@b.example", URL: "https://b.example/actors/alice"},
		SourceBranch: "federated/b.example/alice/fix", TargetBranch: "main"})
	if err != nil {
		t.Fatalf("OpenMergeRequest with write:repository: %v", err)
	}
	found, ok, err := w.FindPullByKey(ctx, fr, key)
	if err != nil || !ok || found.Number != ref.Number {
		t.Fatalf("FindPullByKey = %+v, %v, %v; want #%d", found, ok, err, ref.Number)
	}
	if _, ok, err := w.FindPullByKey(ctx, fr, "https://b.example/other"); err != nil || ok {
		t.Errorf("FindPullByKey(another key) = %v, %v; want not found", ok, err)
	}
	st, err := w.PullState(ctx, fr, ref.Number)
	if err != nil || !st.Open || st.Merged {
		t.Fatalf("PullState of a new pull request = %+v, %v", st, err)
	}
	closed := sdk.StateClosed
	if _, _, err := g.Client.EditPullRequest(g.AdminUser, repo.Name, ref.Number, sdk.EditPullRequestOption{State: &closed}); err != nil {
		t.Fatal(err)
	}
	if st, err := w.PullState(ctx, fr, ref.Number); err != nil || st.Open {
		t.Errorf("PullState of a closed pull request = %+v, %v", st, err)
	}
}

func ptr[T any](v T) *T { return &v }
