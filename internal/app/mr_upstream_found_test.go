package app

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"testing"
	"time"

	sdk "code.gitea.io/sdk/gitea"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/forge/giteatest"
	"github.com/fedforge/fedforge/internal/store"
)

// TestMergeRequestUpstreamFound (issue 14, fork side): a Repository actor that declares no
// upstream finds it from the forge's own record. Alice's repository in a real Gitea is a
// migration (Gitea's original_url) of a repository whose clone URL is the cloneUri of a
// Repository actor alpha already knows (it wrote to alpha, so alpha cached it); alpha then
// sends that actor the fork notice, shows it as forkedFrom, and offers it Alice's labelled
// pull request.
func TestMergeRequestUpstreamFound(t *testing.T) {
	t.Parallel()
	g := giteatest.Start(t)
	up := startUpstreamPeer(t)
	p := newPair(t)
	up.attach(p.alpha.listen)
	ctx := context.Background()

	// Bob's repository (here on the same Gitea), with a first commit, is the origin.
	src := g.CreateRepo(t, "bobs-project")
	work := t.TempDir()
	git := func(args ...string) string { return giteatest.Git(t, work, g.AdminUser, g.Token, args...) }
	git("init", "-q", "-b", "main")
	must(t, os.WriteFile(filepath.Join(work, "README.md"), []byte("Bob's project.\n"), 0o644))
	git("add", ".")
	git("commit", "-q", "-m", "Start")
	git("push", "-q", src.CloneURL, "HEAD:main")
	g.WaitPushed(t, src.Owner.UserName, src.Name, "main", git("rev-parse", "HEAD"))
	up.mu.Lock()
	up.cloneURI = src.CloneURL
	up.mu.Unlock()

	alice := g.CreateUser(t, "alice")
	repo, _, err := alice.Client.MigrateRepo(sdk.MigrateRepoOption{RepoName: "project", RepoOwner: "alice", CloneAddr: src.CloneURL, Service: sdk.GitServicePlain})
	must(t, err)
	if repo.OriginalURL == "" {
		t.Fatalf("Gitea recorded no original_url for the migration of %s", src.CloneURL)
	}
	bot := g.CreateUser(t, "fedforge-bot", "read:repository", "write:issue")
	write := sdk.AccessModeWrite
	_, err = alice.Client.AddCollaborator("alice", "project", bot.Name, sdk.AddCollaboratorOption{Permission: &write})
	must(t, err)

	// alpha learns of R_A (and caches its document) when R_A writes to it.
	alphaStore, err := store.Open(ctx, p.alpha.dsn)
	must(t, err)
	t.Cleanup(func() { _ = alphaStore.Close() })
	ra := up.id()
	up.send(t, p, map[string]any{"@context": "https://www.w3.org/ns/activitystreams", "id": ra + "/activities/hello", "type": "Create",
		"actor": ra, "to": []string{"https://www.w3.org/ns/activitystreams#Public"},
		"object": map[string]any{"id": ra + "/notes/hello", "type": "Note", "attributedTo": ra, "content": "<p>hello</p>"}})
	eventually(t, 30*time.Second, func() error {
		_, err := alphaStore.GetRemoteActor(ctx, ra)
		return err
	})

	const secret = "alice-hook-secret"
	must(t, p.k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "alpha", Name: "forge-token"},
		StringData: map[string]string{"token": bot.Token, "hook": secret}}))
	must(t, p.k8s.Create(ctx, &fedv1.FederatedActor{
		ObjectMeta: metav1.ObjectMeta{Namespace: "alpha", Name: "project"},
		Spec: fedv1.FederatedActorSpec{ServerRef: fedv1.LocalObjectReference{Name: "forge"}, Type: fedv1.ActorRepository,
			PreferredUsername: "project",
			Forge:             &fedv1.ForgeAccess{Type: fedv1.ForgeGitea, URL: g.URL, Project: "alice/project", TokenSecretRef: fedv1.SecretKeyReference{Name: "forge-token"}},
			Sources: []fedv1.EventSource{{Name: "gitea", Type: fedv1.SourceGitea,
				SecretRef: &fedv1.SecretKeyReference{Name: "forge-token", Key: "hook"}}}},
	}))
	rb := p.alpha.base() + "/actors/project"
	waitServed(t, p.alpha, "project")
	_, relayURL := startHookRelay(t, p)
	g.CreateWebhook(t, "alice", "project", relayURL+"/hooks/project/gitea", secret, "pull_request")

	notice := up.wait(t, "the fork notice", func(d map[string]any) bool { return d["type"] == "Create" && obj(d, "object")["type"] == "Repository" })
	if o := obj(notice.doc, "object"); o["id"] != rb || o["origin"] != ra || o["forkedFrom"] != ra {
		t.Errorf("fork notice = %v, want Create{Repository %s forked from %s}", notice.doc, rb, ra)
	}
	if doc := getAS2(t, p.alpha, "/actors/project"); doc["forkedFrom"] != ra {
		t.Errorf("R_B's document says forkedFrom %v, want the upstream found, %s", doc["forkedFrom"], ra)
	}

	label, _, err := alice.Client.CreateLabel("alice", "project", sdk.CreateLabelOption{Name: "upstream", Color: "#00aabb"})
	must(t, err)
	_, _, err = alice.Client.CreateFile("alice", "project", "fix.txt", sdk.CreateFileOptions{
		FileOptions: sdk.FileOptions{BranchName: "main", NewBranchName: "fix", Message: "Fix"},
		Content:     base64.StdEncoding.EncodeToString([]byte("fixed\n"))})
	must(t, err)
	_, _, err = alice.Client.CreatePullRequest("alice", "project", sdk.CreatePullRequestOption{Head: "fix", Base: "main",
		Title: "Fix", Body: "Fix.", Labels: []int64{label.ID}})
	must(t, err)
	offer := up.wait(t, "the Offer to the upstream found", func(d map[string]any) bool { return d["type"] == "Offer" })
	if offer.doc["target"] != ra || obj(obj(obj(offer.doc, "object"), "attachment"), "target")["context"] != ra {
		t.Errorf("Offer = %v, want to %s", offer.doc, ra)
	}
}
