package app

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"code.gitea.io/sdk/gitea"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/forge/giteatest"
)

// TestRealGiteaIssueAndPullRequestReachFollowers (issue 12): an issue opened and a pull
// request opened in a real Gitea (main pushed with Debian's git, the branch committed
// through Gitea's contents API) reach a follower on another loopback address as signed
// posts that link to the real Gitea pages, with no recorded payload anywhere.
func TestRealGiteaIssueAndPullRequestReachFollowers(t *testing.T) {
	t.Parallel()
	g := giteatest.Start(t)
	p := newPair(t)
	ctx := context.Background()
	const secret = "gitea-pull-secret"
	must(t, p.k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "alpha", Name: "gitea-hook"},
		StringData: map[string]string{"secret": secret}}))
	must(t, p.k8s.Create(ctx, &fedv1.FederatedActor{
		ObjectMeta: metav1.ObjectMeta{Namespace: "alpha", Name: "demo"},
		Spec: fedv1.FederatedActorSpec{ServerRef: fedv1.LocalObjectReference{Name: "forge"}, Type: fedv1.ActorRepository,
			PreferredUsername: "demo", Name: "demo",
			Sources: []fedv1.EventSource{{Name: "gitea", Type: fedv1.SourceGitea,
				SecretRef: &fedv1.SecretKeyReference{Name: "gitea-hook", Key: "secret"},
				Events:    []string{"Issue", "MergeRequest"}}}},
	}))
	waitServed(t, p.alpha, "demo")
	watcher, beta := p.watchDemo(t)

	_, relayURL := startHookRelay(t, p)
	repo := g.CreateRepo(t, "demo")
	owner := repo.Owner.UserName
	g.CreateWebhook(t, owner, repo.Name, relayURL+"/hooks/demo/gitea", secret, "issues", "pull_request")

	// postLinking waits for a Create from alpha's demo whose Note links page.
	postLinking := func(t *testing.T, page string) *activitypub.Object {
		t.Helper()
		var note *activitypub.Object
		eventually(t, 90*time.Second, func() error {
			for _, r := range receivedOf(t, beta, watcher, "Create") {
				d, err := activitypub.DecodeObject(r.Raw)
				if err == nil && d.Object.Object != nil && strings.Contains(d.Object.Object.Content, page) {
					if r.ActorID != p.alpha.base()+"/actors/demo" {
						return fmt.Errorf("the post linking %s came from %s", page, r.ActorID)
					}
					note = d.Object.Object
					return nil
				}
			}
			return fmt.Errorf("no post linking %s received", page)
		})
		return note
	}

	t.Run("an issue opened in Gitea reaches the follower", func(t *testing.T) {
		issue, _, err := g.Client.CreateIssue(owner, repo.Name, gitea.CreateIssueOption{Title: "Docs are out of date", Body: "The install page names v1."})
		must(t, err)
		note := postLinking(t, issue.HTMLURL)
		if !strings.Contains(note.Content, "Docs are out of date") {
			t.Errorf("issue post does not carry the title: %s", note.Content)
		}
	})

	t.Run("a pull request from a pushed branch reaches the follower", func(t *testing.T) {
		// main gets a first commit by a git push; the branch's commit is made through
		// Gitea's contents API (which pushes it as the admin).
		work := t.TempDir()
		git := func(args ...string) string { return giteatest.Git(t, work, g.AdminUser, g.Token, args...) }
		git("init", "-q")
		must(t, os.WriteFile(filepath.Join(work, "INSTALL.md"), []byte("Install v1.\n"), 0o644))
		git("add", ".")
		git("commit", "-q", "-m", "Install page")
		git("push", "-q", repo.CloneURL, "HEAD:main")
		base := "main"
		if _, _, err := g.Client.CreateFile(owner, repo.Name, "fix.txt", gitea.CreateFileOptions{
			FileOptions: gitea.FileOptions{BranchName: base, NewBranchName: "fix-docs", Message: "Name v2 in the install page"},
			Content:     base64.StdEncoding.EncodeToString([]byte("Install v2.\n"))}); err != nil {
			t.Fatalf("commit on branch fix-docs: %v", err)
		}
		pr, _, err := g.Client.CreatePullRequest(owner, repo.Name, gitea.CreatePullRequestOption{
			Head: "fix-docs", Base: base, Title: "Name v2 in the install page", Body: "Fixes the docs."})
		must(t, err)
		note := postLinking(t, pr.HTMLURL)
		if !strings.Contains(note.Content, "Name v2 in the install page") {
			t.Errorf("pull request post does not carry the title: %s", note.Content)
		}
	})
}
