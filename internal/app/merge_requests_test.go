package app

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sdk "code.gitea.io/sdk/gitea"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/forge/giteatest"
)

// TestMergeRequestsFromAnotherInstance (issue 14, upstream side): Alice's fork is served
// by a real Gitea ("forge B") behind a Go peer whose Repository actor R_B signs what it
// sends; Bob's repository is on a real Gitea ("forge A") behind alpha. R_B's Offer of a
// merge request makes alpha fetch the branch over Git, push it to
// federated/<host>/<user>/<branch> in forge A, open a pull request attributed to R_B and
// answer with a signed Accept naming the merge request; the same Offer again opens
// nothing; a Push after Alice's next commit updates the pull request; Bob's merge in forge
// A reaches R_B as a signed Resolve whose result is Gitea's merge commit. Refusals (not
// accepted, a refused address, too large, no such branch, a bad ref) are Rejects with
// their reason, and nothing is pushed for them.
func TestMergeRequestsFromAnotherInstance(t *testing.T) {
	t.Parallel()
	g := giteatest.Start(t)
	ctx := context.Background()

	// Forge A: Bob's project with one commit on main; forge B: Alice's fork with a branch.
	bob := g.CreateRepo(t, "project")
	fork := g.CreateRepo(t, "alice-project")
	owner := bob.Owner.UserName
	work := t.TempDir()
	git := func(args ...string) string { return giteatest.Git(t, work, g.AdminUser, g.Token, args...) }
	commit := func(file, content, msg string) string {
		must(t, os.WriteFile(filepath.Join(work, file), []byte(content), 0o644))
		git("add", file)
		git("commit", "-q", "-m", msg)
		return git("rev-parse", "HEAD")
	}
	git("init", "-q")
	base := commit("README.md", "Project.\n", "Start")
	git("push", "-q", bob.CloneURL, "HEAD:refs/heads/main")
	git("push", "-q", fork.CloneURL, "HEAD:refs/heads/main")
	g.WaitPushed(t, owner, bob.Name, "main", base)
	git("checkout", "-q", "-b", "fix")
	fix1 := commit("fix.txt", "fixed\n", "Fix the thing")
	git("push", "-q", fork.CloneURL, "HEAD:refs/heads/fix")
	g.WaitPushed(t, owner, fork.Name, "fix", fix1)
	// A branch with 16 KiB of incompressible data, for a 1 KiB cap.
	git("checkout", "-q", "-b", "big", "main")
	random := make([]byte, 16<<10)
	_, _ = rand.Read(random)
	bigHead := commit("big.bin", string(random), "A big file")
	git("push", "-q", fork.CloneURL, "HEAD:refs/heads/big")
	g.WaitPushed(t, owner, fork.Name, "big", bigHead)
	git("checkout", "-q", "fix")

	fp := newForkPeer(t, map[string]string{"project": fork.CloneURL, "guarded": "http://10.20.30.40/alice/project.git"})
	p := newPair(t, fp.host+"="+fp.addr)
	fp.attach(p.alpha.listen)

	bot := g.CreateUser(t, "fedforge-bot", "write:repository", "write:issue")
	_, err := g.Client.AddCollaborator(owner, bob.Name, bot.Name, sdk.AddCollaboratorOption{Permission: ptrTo(sdk.AccessModeWrite)})
	must(t, err)
	const secret = "mr-hook-secret"
	must(t, p.k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "alpha", Name: "forge-token"},
		StringData: map[string]string{"token": bot.Token, "secret": secret}}))
	forgeSpec := &fedv1.ForgeAccess{Type: fedv1.ForgeGitea, URL: g.URL, Project: bob.FullName, TokenSecretRef: fedv1.SecretKeyReference{Name: "forge-token"}}
	small := resource.MustParse("1Ki")
	for name, mrs := range map[string]*fedv1.MergeRequestsSpec{
		"project": {Accept: true},
		"closed":  nil,
		"small":   {Accept: true, MaxBranchSize: &small},
	} {
		spec := fedv1.FederatedActorSpec{ServerRef: fedv1.LocalObjectReference{Name: "forge"}, Type: fedv1.ActorRepository,
			PreferredUsername: name, Forge: forgeSpec, MergeRequests: mrs}
		if name == "project" {
			spec.Sources = []fedv1.EventSource{{Name: "gitea", Type: fedv1.SourceGitea,
				SecretRef: &fedv1.SecretKeyReference{Name: "forge-token", Key: "secret"}, Events: []string{"MergeRequest"}}}
		}
		must(t, p.k8s.Create(ctx, &fedv1.FederatedActor{ObjectMeta: metav1.ObjectMeta{Namespace: "alpha", Name: name}, Spec: spec}))
		waitServed(t, p.alpha, name)
	}
	_, relayURL := startHookRelay(t, p)
	g.CreateWebhook(t, owner, bob.Name, relayURL+"/hooks/project/gitea", secret, "pull_request")

	rA := p.alpha.base() + "/actors/project"
	rB := fp.actor("project")
	federated := "federated/" + fp.host + "/project/fix"
	waitAnswer := func(t *testing.T, typ, offerID string) map[string]any {
		t.Helper()
		var got []map[string]any
		eventually(t, 90*time.Second, func() error {
			if got = fp.answers(typ, offerID); len(got) == 0 {
				return fmt.Errorf("no verified %s of %s yet (unverified: %v)", typ, offerID, fp.unverified)
			}
			return nil
		})
		return got[0]
	}
	pulls := func() []*sdk.PullRequest {
		list, _, err := g.Client.ListRepoPullRequests(owner, bob.Name, sdk.ListPullRequestsOptions{State: sdk.StateAll})
		must(t, err)
		return list
	}
	federatedBranches := func() []string {
		bs, _, err := g.Client.ListRepoBranches(owner, bob.Name, sdk.ListRepoBranchesOptions{})
		must(t, err)
		var out []string
		for _, b := range bs {
			if strings.HasPrefix(b.Name, "federated/") {
				out = append(out, b.Name)
			}
		}
		return out
	}

	offer1 := "http://" + fp.host + "/repos/project/offers/1"
	var number int64
	t.Run("an offered branch becomes a pull request in forge A and is accepted with the merge request", func(t *testing.T) {
		start := time.Now()
		if code, body := fp.send(t, p, "project", fp.offer(offer1, "project", rA, "Fix the thing", "refs/heads/fix")); code != http.StatusAccepted {
			t.Fatalf("Offer answered %d %s", code, body)
		}
		accept := waitAnswer(t, "Accept", offer1)
		t.Logf("Offer to signed Accept on loopback: %s", time.Since(start).Round(time.Millisecond))
		prs := pulls()
		if len(prs) != 1 {
			t.Fatalf("pull requests in forge A: %d, want 1", len(prs))
		}
		pr := prs[0]
		number = pr.Index
		if want := fmt.Sprintf("%s/merge-requests/%d", rA, number); accept["actor"] != rA || accept["result"] != want {
			t.Errorf("Accept = %v, want from %s with result %s", accept, rA, want)
		}
		if pr.Head.Ref != federated || pr.Base.Ref != "main" || pr.Head.Sha != fix1 || pr.Title != "Fix the thing" || pr.Poster.UserName != bot.Name {
			t.Errorf("pull request %s → %s at %s titled %q by %s; want %s → main at %s by the bot", pr.Head.Ref, pr.Base.Ref, pr.Head.Sha, pr.Title, pr.Poster.UserName, federated, fix1)
		}
		for _, want := range []string{"Please merge `refs/heads/fix`.", "Offered on the Fediverse by", "(<" + rB + ">)", "<!-- fedforge:idempotency-key=" + offer1} {
			if !strings.Contains(pr.Body, want) {
				t.Errorf("pull request body lacks %q:\n%s", want, pr.Body)
			}
		}
		commits, _, err := g.Client.ListPullRequestCommits(owner, bob.Name, number, sdk.ListPullRequestCommitsOptions{})
		must(t, err)
		if len(commits) != 1 || commits[0].SHA != fix1 {
			t.Errorf("pull request commits = %d, want Alice's %s", len(commits), fix1)
		}
	})

	t.Run("the same Offer again opens nothing and is answered once", func(t *testing.T) {
		if code, body := fp.send(t, p, "project", fp.offer(offer1, "project", rA, "Fix the thing", "refs/heads/fix")); code != http.StatusAccepted {
			t.Fatalf("repeated Offer answered %d %s", code, body)
		}
		if n := len(pulls()); n != 1 {
			t.Errorf("%d pull requests after the repeated Offer, want 1", n)
		}
		if n := len(fp.answers("Accept", offer1)); n != 1 {
			t.Errorf("%d Accepts of the Offer, want 1", n)
		}
	})

	t.Run("a Push after Alice's next commit updates the pull request", func(t *testing.T) {
		fix2 := commit("fix.txt", "fixed twice\n", "Fix it better")
		git("push", "-q", fork.CloneURL, "HEAD:refs/heads/fix")
		g.WaitPushed(t, owner, fork.Name, "fix", fix2)
		push := fp.push("http://"+fp.host+"/repos/project/pushes/2", "project", rA, "refs/heads/fix", fix1, fix2)
		if code, body := fp.send(t, p, "project", push); code != http.StatusAccepted {
			t.Fatalf("Push answered %d %s", code, body)
		}
		// Gitea refreshes a pull request from a push in a queue.
		eventually(t, 90*time.Second, func() error {
			pr, _, err := g.Client.GetPullRequest(owner, bob.Name, number)
			if err != nil {
				return err
			}
			commits, _, err := g.Client.ListPullRequestCommits(owner, bob.Name, number, sdk.ListPullRequestCommitsOptions{})
			if err != nil {
				return err
			}
			if pr.Head.Sha != fix2 || len(commits) != 2 {
				return fmt.Errorf("pull request head %s with %d commits, want %s with 2", pr.Head.Sha, len(commits), fix2)
			}
			return nil
		})
	})

	t.Run("a Push for a branch without a merge request is accepted and changes nothing", func(t *testing.T) {
		push := fp.push("http://"+fp.host+"/repos/project/pushes/3", "project", rA, "refs/heads/other", base, fix1)
		if code, body := fp.send(t, p, "project", push); code != http.StatusAccepted {
			t.Fatalf("Push answered %d %s", code, body)
		}
		if got := federatedBranches(); len(got) != 1 {
			t.Errorf("federated branches %v, want only %s", got, federated)
		}
	})

	refusals := []struct {
		name, actor, target, ref, status, reason string
		code                                     int
	}{
		{"an actor that does not accept merge requests", "project", "closed", "refs/heads/fix", "", "does not accept merge requests", http.StatusAccepted},
		{"a clone URL on a refused address", "guarded", "project", "refs/heads/fix", "", "refused by this server's network guard", http.StatusAccepted},
		{"a branch larger than the cap", "project", "small", "refs/heads/big", "", "larger than this repository accepts", http.StatusAccepted},
		{"a second Offer of a branch already offered", "project", "project", "refs/heads/fix", "", "is already open", http.StatusAccepted},
		{"a branch that does not exist", "project", "project", "refs/heads/nope", "", "there is no branch nope", http.StatusAccepted},
		{"a bad ref name", "project", "project", "refs/heads/a..b", "", "bad ref name", http.StatusUnprocessableEntity},
	}
	for i, tc := range refusals {
		t.Run("refused: "+tc.name, func(t *testing.T) {
			id := fmt.Sprintf("http://%s/repos/%s/offers/refused-%d", fp.host, tc.actor, i)
			code, body := fp.send(t, p, tc.actor, fp.offer(id, tc.actor, p.alpha.base()+"/actors/"+tc.target, "Refused "+tc.name, tc.ref))
			if code != tc.code {
				t.Fatalf("Offer answered %d %s, want %d", code, body, tc.code)
			}
			rej := waitAnswer(t, "Reject", id)
			if s, _ := rej["summary"].(string); !strings.Contains(s, tc.reason) {
				t.Errorf("Reject says %q, want %q", s, tc.reason)
			}
			if got := federatedBranches(); len(got) != 1 {
				t.Errorf("federated branches %v after a refusal, want only %s", got, federated)
			}
			if n := len(pulls()); n != 1 {
				t.Errorf("%d pull requests after a refusal, want 1", n)
			}
		})
	}

	t.Run("each refusal is a Warning Event on the actor, the opened merge request a Normal one", func(t *testing.T) {
		actor := func(name string) *fedv1.FederatedActor {
			var a fedv1.FederatedActor
			must(t, p.k8s.Get(ctx, client.ObjectKey{Namespace: "alpha", Name: name}, &a))
			return &a
		}
		tells(t, p, actor("closed"), "FederatedActor", "Warning MergeRequestRejected: Merge request "+fmt.Sprintf("http://%s/repos/project/offers/refused-0", fp.host))
		tells(t, p, actor("small"), "FederatedActor", "Warning MergeRequestRejected: ")
		tells(t, p, actor("project"), "FederatedActor", "Normal MergeRequestOpened: Merge request "+offer1, "Normal MergeRequestUpdated: ",
			"Warning MergeRequestRejected: ")
	})

	t.Run("Bob's merge in forge A reaches R_B as a Resolve with the merge commit", func(t *testing.T) {
		start := time.Now()
		eventually(t, 60*time.Second, func() error { // Gitea checks mergeability in a queue first
			ok, _, err := g.Client.MergePullRequest(owner, bob.Name, number, sdk.MergePullRequestOption{Style: sdk.MergeStyleMerge, Title: "Merge Alice's fix"})
			if err != nil || !ok {
				return fmt.Errorf("merge: %v %v", ok, err)
			}
			return nil
		})
		pr, _, err := g.Client.GetPullRequest(owner, bob.Name, number)
		must(t, err)
		if !pr.HasMerged || pr.MergedCommitID == nil {
			t.Fatalf("pull request not merged: %+v", pr)
		}
		mr := fmt.Sprintf("%s/merge-requests/%d", rA, number)
		res := waitAnswer(t, "Resolve", mr)
		t.Logf("merge in forge A to signed Resolve at R_B on loopback: %s", time.Since(start).Round(time.Millisecond))
		result, _ := res["result"].(map[string]any)
		if res["actor"] != rA || result["type"] != "Commit" || result["hash"] != *pr.MergedCommitID {
			t.Errorf("Resolve = %v, want from %s with result Commit %s", res, rA, *pr.MergedCommitID)
		}
	})
}

func ptrTo[T any](v T) *T { return &v }
