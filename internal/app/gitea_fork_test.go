package app

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"code.gitea.io/sdk/gitea"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/forge/giteatest"
)

// TestRealGiteaForkListedInForks: a fork made through a real Gitea's API is delivered by
// Gitea's `fork` webhook to the upstream's Repository actor, which lists the fork's Gitea
// page in its ForgeFed forks collection, although the source does not post forks.
func TestRealGiteaForkListedInForks(t *testing.T) {
	t.Parallel()
	g := giteatest.Start(t)
	p := newPair(t)
	ctx := context.Background()
	const secret = "gitea-fork-secret"
	must(t, p.k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "alpha", Name: "gitea-hook"},
		StringData: map[string]string{"secret": secret}}))
	must(t, p.k8s.Create(ctx, &fedv1.FederatedActor{
		ObjectMeta: metav1.ObjectMeta{Namespace: "alpha", Name: "demo"},
		Spec: fedv1.FederatedActorSpec{ServerRef: fedv1.LocalObjectReference{Name: "forge"}, Type: fedv1.ActorRepository,
			PreferredUsername: "demo", Name: "demo",
			Sources: []fedv1.EventSource{{Name: "gitea", Type: fedv1.SourceGitea,
				SecretRef: &fedv1.SecretKeyReference{Name: "gitea-hook", Key: "secret"}, Events: []string{"Push"}}}},
	}))
	eventually(t, 30*time.Second, func() error {
		req, _ := http.NewRequest(http.MethodGet, "http://"+p.alpha.listen+"/actors/demo/forks", nil)
		req.Host = alphaHost
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("forks of alpha/demo: %d", resp.StatusCode)
		}
		return nil
	})

	relay, relayURL := startHookRelay(t, p)
	repo := g.CreateRepo(t, "demo")
	owner := repo.Owner.UserName
	work := t.TempDir()
	git := func(args ...string) string { return giteatest.Git(t, work, g.AdminUser, g.Token, args...) }
	git("init", "-q")
	must(t, os.WriteFile(filepath.Join(work, "README"), []byte("demo\n"), 0o644))
	git("add", ".")
	git("commit", "-q", "-m", "Start")
	sha := git("rev-parse", "HEAD")
	git("push", "-q", repo.CloneURL, "main")
	g.WaitPushed(t, owner, repo.Name, "main", sha)
	g.CreateWebhook(t, owner, repo.Name, relayURL+"/hooks/demo/gitea", secret, "fork")

	alice := g.CreateUser(t, "alice")
	fork, _, err := alice.Client.CreateFork(owner, repo.Name, gitea.CreateForkOption{})
	if err != nil {
		t.Fatalf("fork %s/%s as alice on %s: %v", owner, repo.Name, g.URL, err)
	}
	if fork.HTMLURL != g.URL+"/alice/"+repo.Name {
		t.Errorf("fork page %s", fork.HTMLURL)
	}
	eventually(t, 90*time.Second, func() error {
		calls := relay.answered(func(c hookCall) bool { return c.event == "fork" })
		if len(calls) == 0 {
			return fmt.Errorf("Gitea has not delivered the fork yet")
		}
		for _, c := range calls {
			if c.status != http.StatusAccepted {
				return fmt.Errorf("alpha answered the fork delivery with %d", c.status)
			}
		}
		return nil
	})
	n, items := collectionOf(t, p.alpha, "/actors/demo/forks")
	if n != 1 || len(items) != 1 || items[0] != fork.HTMLURL {
		t.Errorf("forks of alpha/demo: totalItems %v items %v, want [%s]", n, items, fork.HTMLURL)
	}
}
