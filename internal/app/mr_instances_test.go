package app

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	sdk "code.gitea.io/sdk/gitea"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/forge/giteatest"
	"github.com/fedforge/fedforge/internal/store"
)

// TestMergeRequestBetweenInstances is issue 14's workflow between two Fedforge instances,
// each in front of its own real Gitea: Bob's project in Gitea A behind alpha, Alice's fork in
// Gitea B behind beta. 1: beta announces the fork and alpha lists it in Bob's forks. 2:
// Alice's pull request, labelled "upstream", becomes a pull request in Gitea A from the
// federated branch, and the Accept is linked on hers. 3: Bob's comment is written on
// Alice's pull request, credited to Bob's repository; Alice's comment reaches alpha as a
// Note in reply to the merge request and is written on Bob's pull request. 4: Alice's
// next push updates Bob's pull request. 5: Bob's merge closes Alice's pull request with a comment naming the merge commit. Every
// activity crosses over signed HTTP; each forge's state is read through its API.
func TestMergeRequestBetweenInstances(t *testing.T) {
	t.Parallel()
	ga, gb := giteatest.Start(t), giteatest.Start(t)
	p := newPair(t)
	ctx := context.Background()

	// Gitea A: Bob's project with a first commit.
	bob := ga.CreateRepo(t, "project")
	owner := bob.Owner.UserName
	work := t.TempDir()
	gitA := func(args ...string) string { return giteatest.Git(t, work, ga.AdminUser, ga.Token, args...) }
	commit := func(file, content, msg string) string {
		must(t, os.WriteFile(filepath.Join(work, file), []byte(content), 0o644))
		gitA("add", file)
		gitA("commit", "-q", "-m", msg)
		return gitA("rev-parse", "HEAD")
	}
	gitA("init", "-q", "-b", "main")
	base := commit("README.md", "Bob's project.\n", "Start")
	gitA("push", "-q", bob.CloneURL, "HEAD:main")
	ga.WaitPushed(t, owner, bob.Name, "main", base)
	botA := ga.CreateUser(t, "fedforge-bot", "write:repository", "write:issue")
	_, err := ga.Client.AddCollaborator(owner, bob.Name, botA.Name, sdk.AddCollaboratorOption{Permission: ptrTo(sdk.AccessModeWrite)})
	must(t, err)

	// Gitea B: Alice's fork, a clone of Bob's main pushed to her repository, and her branch.
	alice := gb.CreateUser(t, "alice")
	fork, _, err := alice.Client.CreateRepo(sdk.CreateRepoOption{Name: "project", DefaultBranch: "main"})
	must(t, err)
	gitB := func(args ...string) string { return giteatest.Git(t, work, alice.Name, alice.Token, args...) }
	gitB("push", "-q", fork.CloneURL, "HEAD:main")
	gitA("checkout", "-q", "-b", "fix")
	fix1 := commit("fix.txt", "fixed\n", "Fix the build")
	gitB("push", "-q", fork.CloneURL, "HEAD:fix")
	gb.WaitPushed(t, alice.Name, fork.Name, "fix", fix1)
	botB := gb.CreateUser(t, "fedforge-bot", "read:repository", "write:issue")
	_, err = alice.Client.AddCollaborator(alice.Name, fork.Name, botB.Name, sdk.AddCollaboratorOption{Permission: ptrTo(sdk.AccessModeWrite)})
	must(t, err)

	const secret = "mr-hook-secret"
	rA := p.alpha.base() + "/actors/bobs-project"
	rB := p.beta.base() + "/actors/alices-project"
	for _, side := range []struct {
		in     instance
		name   string
		g      *giteatest.Instance
		token  string
		repo   string
		mrs    *fedv1.MergeRequestsSpec
		events []string
	}{
		{p.alpha, "bobs-project", ga, botA.Token, bob.FullName, &fedv1.MergeRequestsSpec{Accept: true}, []string{"pull_request"}},
		{p.beta, "alices-project", gb, botB.Token, fork.FullName, &fedv1.MergeRequestsSpec{Upstream: rA}, []string{"push", "pull_request"}},
	} {
		must(t, p.k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: side.in.ns, Name: "forge-token"},
			StringData: map[string]string{"token": side.token, "hook": secret}}))
		must(t, p.k8s.Create(ctx, &fedv1.FederatedActor{
			ObjectMeta: metav1.ObjectMeta{Namespace: side.in.ns, Name: side.name},
			Spec: fedv1.FederatedActorSpec{ServerRef: fedv1.LocalObjectReference{Name: "forge"}, Type: fedv1.ActorRepository,
				PreferredUsername: side.name,
				Forge:             &fedv1.ForgeAccess{Type: fedv1.ForgeGitea, URL: side.g.URL, Project: side.repo, TokenSecretRef: fedv1.SecretKeyReference{Name: "forge-token"}},
				Sources: []fedv1.EventSource{{Name: "gitea", Type: fedv1.SourceGitea,
					SecretRef: &fedv1.SecretKeyReference{Name: "forge-token", Key: "hook"}}},
				MergeRequests: side.mrs},
		}))
		waitServed(t, side.in, side.name)
		ownerName, repoName, _ := strings.Cut(side.repo, "/")
		side.g.CreateWebhook(t, ownerName, repoName, relayTo(t, side.in)+"/hooks/"+side.name+"/gitea", secret, side.events...)
	}
	alphaStore, err := store.Open(ctx, p.alpha.dsn)
	must(t, err)
	t.Cleanup(func() { _ = alphaStore.Close() })

	t.Run("1 fork: alpha lists Alice's repository in Bob's forks", func(t *testing.T) {
		eventually(t, 90*time.Second, func() error {
			_, items := collectionOf(t, p.alpha, "/actors/bobs-project/forks")
			for _, it := range items {
				if it == rB || (fmt.Sprint(it) != "" && strings.Contains(fmt.Sprint(it), rB)) {
					return nil
				}
			}
			return fmt.Errorf("Bob's forks: %v", items)
		})
	})

	label, _, err := alice.Client.CreateLabel(alice.Name, fork.Name, sdk.CreateLabelOption{Name: "upstream", Color: "#00aabb"})
	must(t, err)
	alicePR, _, err := alice.Client.CreatePullRequest(alice.Name, fork.Name, sdk.CreatePullRequestOption{Head: "fix", Base: "main",
		Title: "Fix the build", Body: "The make step failed.", Labels: []int64{label.ID}})
	must(t, err)
	aliceComments := func() []*sdk.Comment {
		cs, _, err := alice.Client.ListIssueComments(alice.Name, fork.Name, alicePR.Index, sdk.ListIssueCommentOptions{})
		must(t, err)
		return cs
	}
	waitAliceComment := func(t *testing.T, what string, match func(string) bool) {
		t.Helper()
		eventually(t, 90*time.Second, func() error {
			for _, c := range aliceComments() {
				if match(c.Body) {
					return nil
				}
			}
			return fmt.Errorf("no comment with %s on Alice's pull request", what)
		})
	}
	federated := "federated/" + p.beta.host + "/alices-project/fix"
	var bobPR *sdk.PullRequest
	t.Run("2 merge request: Alice's labelled pull request becomes Bob's, and the Accept is linked on hers", func(t *testing.T) {
		opened := time.Now()
		eventually(t, 90*time.Second, func() error {
			list, _, err := ga.Client.ListRepoPullRequests(owner, bob.Name, sdk.ListPullRequestsOptions{State: sdk.StateAll})
			if err != nil || len(list) != 1 {
				return fmt.Errorf("pull requests in Gitea A: %d, %v", len(list), err)
			}
			bobPR = list[0]
			return nil
		})
		t.Logf("measured: Alice's labelled pull request in Gitea B → Bob's pull request in Gitea A: %s", time.Since(opened).Round(time.Millisecond))
		if bobPR.Head.Ref != federated || bobPR.Base.Ref != "main" || bobPR.Head.Sha != fix1 || bobPR.Title != "Fix the build" ||
			!strings.Contains(bobPR.Body, rB) {
			t.Errorf("Bob's pull request %s → %s at %s, %q: %s; want %s → main at %s crediting %s",
				bobPR.Head.Ref, bobPR.Base.Ref, bobPR.Head.Sha, bobPR.Title, bobPR.Body, federated, fix1, rB)
		}
		waitAliceComment(t, "the link to Bob's merge request", func(b string) bool {
			return strings.Contains(b, "Offered upstream") && strings.Contains(b, rA+"/merge-requests/")
		})
	})
	if bobPR == nil {
		t.Fatal("no pull request in Gitea A: the rest depends on it")
	}
	ticket := rA + "/merge-requests/" + fmt.Sprint(bobPR.Index)

	t.Run("3 discussion: Bob's comment on Alice's pull request; Alice's reaches alpha in reply to the merge request", func(t *testing.T) {
		_, _, err := ga.Client.CreateIssueComment(owner, bob.Name, bobPR.Index, sdk.CreateIssueCommentOption{Body: "One nit: the arm64 case."})
		must(t, err)
		waitAliceComment(t, "Bob's comment", func(b string) bool {
			return strings.Contains(b, "One nit: the arm64 case.") && strings.Contains(b, "<"+rA+">")
		})
		_, _, err = alice.Client.CreateIssueComment(alice.Name, fork.Name, alicePR.Index, sdk.CreateIssueCommentOption{Body: "Fixed in the next push."})
		must(t, err)
		eventually(t, 90*time.Second, func() error {
			for _, r := range receivedOf(t, alphaStore, rA, "Create") {
				if strings.Contains(string(r.Raw), "Fixed in the next push.") && strings.Contains(string(r.Raw), `"inReplyTo":"`+ticket+`"`) && r.ActorID == rB {
					return nil
				}
			}
			return fmt.Errorf("alpha has not received Alice's comment in reply to %s", ticket)
		})
		// ... and alpha writes it on Bob's pull request, credited to Alice's repository.
		eventually(t, 90*time.Second, func() error {
			cs, _, err := ga.Client.ListIssueComments(owner, bob.Name, bobPR.Index, sdk.ListIssueCommentOptions{})
			if err != nil {
				return err
			}
			for _, c := range cs {
				if strings.Contains(c.Body, "Fixed in the next push.") && strings.Contains(c.Body, rB) {
					return nil
				}
			}
			return fmt.Errorf("no comment crediting %s with Alice's text on Bob's pull request (%d comments)", rB, len(cs))
		})
	})

	t.Run("4 more commits: Alice's push updates Bob's pull request", func(t *testing.T) {
		fix2 := commit("fix.txt", "fixed on arm64 too\n", "Fix arm64")
		gitB("push", "-q", fork.CloneURL, "HEAD:fix")
		eventually(t, 90*time.Second, func() error {
			pr, _, err := ga.Client.GetPullRequest(owner, bob.Name, bobPR.Index)
			if err != nil || pr.Head.Sha != fix2 {
				return fmt.Errorf("Bob's pull request head %v, want %s (%v)", pr.Head.Sha, fix2, err)
			}
			return nil
		})
	})

	t.Run("5 merge: Bob's merge closes Alice's pull request with the merge commit", func(t *testing.T) {
		eventually(t, 60*time.Second, func() error { // Gitea checks mergeability in a queue first
			ok, _, err := ga.Client.MergePullRequest(owner, bob.Name, bobPR.Index, sdk.MergePullRequestOption{Style: sdk.MergeStyleMerge, Title: "Merge Alice's fix"})
			if err != nil || !ok {
				return fmt.Errorf("merge: %v %v", ok, err)
			}
			return nil
		})
		merged := time.Now()
		pr, _, err := ga.Client.GetPullRequest(owner, bob.Name, bobPR.Index)
		must(t, err)
		if !pr.HasMerged || pr.MergedCommitID == nil {
			t.Fatalf("Bob's pull request not merged: %+v", pr)
		}
		eventually(t, 90*time.Second, func() error {
			pr, _, err := alice.Client.GetPullRequest(alice.Name, fork.Name, alicePR.Index)
			if err != nil || pr.State != sdk.StateClosed {
				return fmt.Errorf("Alice's pull request: %v, %v", pr.State, err)
			}
			return nil
		})
		t.Logf("measured: Bob's merge in Gitea A → Alice's pull request closed in Gitea B: %s", time.Since(merged).Round(time.Millisecond))
		waitAliceComment(t, "the merge notice", func(b string) bool {
			return strings.Contains(b, "Merged upstream as") && strings.Contains(b, *pr.MergedCommitID)
		})
		if n := len(slices.DeleteFunc(aliceComments(), func(c *sdk.Comment) bool { return !strings.Contains(c.Body, "Merged upstream as") })); n != 1 {
			t.Errorf("%d merge notices on Alice's pull request, want 1", n)
		}
	})
}

// relayTo forwards webhooks to an instance's listener with its Host, from 127.0.0.4.
func relayTo(t *testing.T, in instance) string {
	t.Helper()
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: in.listen})
	direct := proxy.Director
	proxy.Director = func(r *http.Request) { direct(r); r.Host = in.host }
	ln, err := net.Listen("tcp", "127.0.0.4:0")
	must(t, err)
	srv := &http.Server{Handler: proxy}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}
