package app

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
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

// mrWorkflow is issue 14's two-instance setting, as TestMergeRequestBetweenInstances
// builds it: Bob's project in Gitea A behind alpha (R_A, spec.mergeRequests.accept), Alice's
// fork in Gitea B behind beta (R_B, upstream R_A), both forges' webhooks (push and
// pull_request) relayed to their Fedforge, and a working copy that can push to both.
type mrWorkflow struct {
	p                  *pair
	ga, gb             *giteatest.Instance
	owner              string
	bob, fork          *sdk.Repository
	alice              *giteatest.User
	rA, rB             string
	label              int64
	alphaStore, betaSt store.Store
	gitA, gitB         func(args ...string) string
	commit             func(file, content, msg string) string
	base, fix1         string
}

func startMRWorkflow(t *testing.T) *mrWorkflow {
	t.Helper()
	w := &mrWorkflow{ga: giteatest.Start(t), gb: giteatest.Start(t), p: newPair(t)}
	ctx := context.Background()
	ga, gb, p := w.ga, w.gb, w.p

	w.bob = ga.CreateRepo(t, "project")
	w.owner = w.bob.Owner.UserName
	work := t.TempDir()
	w.gitA = func(args ...string) string { return giteatest.Git(t, work, ga.AdminUser, ga.Token, args...) }
	w.commit = func(file, content, msg string) string {
		must(t, os.WriteFile(filepath.Join(work, file), []byte(content), 0o644))
		w.gitA("add", file)
		w.gitA("commit", "-q", "-m", msg)
		return w.gitA("rev-parse", "HEAD")
	}
	w.gitA("init", "-q", "-b", "main")
	w.base = w.commit("README.md", "Bob's project.\n", "Start")
	w.gitA("push", "-q", w.bob.CloneURL, "HEAD:main")
	ga.WaitPushed(t, w.owner, w.bob.Name, "main", w.base)
	botA := ga.CreateUser(t, "fedforge-bot", "write:repository", "write:issue")
	_, err := ga.Client.AddCollaborator(w.owner, w.bob.Name, botA.Name, sdk.AddCollaboratorOption{Permission: ptrTo(sdk.AccessModeWrite)})
	must(t, err)

	w.alice = gb.CreateUser(t, "alice")
	w.fork, _, err = w.alice.Client.CreateRepo(sdk.CreateRepoOption{Name: "project", DefaultBranch: "main"})
	must(t, err)
	w.gitB = func(args ...string) string { return giteatest.Git(t, work, w.alice.Name, w.alice.Token, args...) }
	w.gitB("push", "-q", w.fork.CloneURL, "HEAD:main")
	w.gitA("checkout", "-q", "-b", "fix")
	w.fix1 = w.commit("fix.txt", "fixed\n", "Fix the build")
	w.gitB("push", "-q", w.fork.CloneURL, "HEAD:fix")
	gb.WaitPushed(t, w.alice.Name, w.fork.Name, "fix", w.fix1)
	botB := gb.CreateUser(t, "fedforge-bot", "read:repository", "write:issue")
	_, err = w.alice.Client.AddCollaborator(w.alice.Name, w.fork.Name, botB.Name, sdk.AddCollaboratorOption{Permission: ptrTo(sdk.AccessModeWrite)})
	must(t, err)

	const secret = "mr-hook-secret"
	w.rA = p.alpha.base() + "/actors/bobs-project"
	w.rB = p.beta.base() + "/actors/alices-project"
	for _, side := range []struct {
		in    instance
		name  string
		g     *giteatest.Instance
		token string
		repo  string
		mrs   *fedv1.MergeRequestsSpec
	}{
		{p.alpha, "bobs-project", ga, botA.Token, w.bob.FullName, &fedv1.MergeRequestsSpec{Accept: true}},
		{p.beta, "alices-project", gb, botB.Token, w.fork.FullName, &fedv1.MergeRequestsSpec{Upstream: w.rA}},
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
		side.g.CreateWebhook(t, ownerName, repoName, relayTo(t, side.in)+"/hooks/"+side.name+"/gitea", secret, "push", "pull_request")
	}
	w.alphaStore, err = store.Open(ctx, p.alpha.dsn)
	must(t, err)
	t.Cleanup(func() { _ = w.alphaStore.Close() })
	w.betaSt, err = store.Open(ctx, p.beta.dsn)
	must(t, err)
	t.Cleanup(func() { _ = w.betaSt.Close() })
	l, _, err := w.alice.Client.CreateLabel(w.alice.Name, w.fork.Name, sdk.CreateLabelOption{Name: "upstream", Color: "#00aabb"})
	must(t, err)
	w.label = l.ID
	return w
}

// offer opens Alice's labelled pull request from head and returns it; when wait is set,
// it waits for Bob's pull request from the federated branch and for the Accept's link on
// Alice's, and returns Bob's too.
func (w *mrWorkflow) offer(t *testing.T, head, title string, wait bool) (alicePR, bobPR *sdk.PullRequest) {
	t.Helper()
	alicePR, _, err := w.alice.Client.CreatePullRequest(w.alice.Name, w.fork.Name, sdk.CreatePullRequestOption{Head: head, Base: "main",
		Title: title, Body: "Please take this.", Labels: []int64{w.label}})
	must(t, err)
	if !wait {
		return alicePR, nil
	}
	bobPR = w.bobPullFrom(t, w.federated(head))
	w.waitComment(t, w.aliceComments(t, alicePR.Index), "the link to Bob's merge request", func(b string) bool {
		return strings.Contains(b, "Offered upstream") && strings.Contains(b, w.rA+"/merge-requests/")
	})
	return alicePR, bobPR
}

// federated is the branch alpha mirrors Alice's branch into.
func (w *mrWorkflow) federated(head string) string {
	return "federated/" + strings.ReplaceAll(w.p.beta.host, ":", "_") + "/alices-project/" + head
}

// bobPullFrom waits for the pull request in Gitea A from branch.
func (w *mrWorkflow) bobPullFrom(t *testing.T, branch string) *sdk.PullRequest {
	t.Helper()
	var pr *sdk.PullRequest
	eventually(t, 90*time.Second, func() error {
		list, _, err := w.ga.Client.ListRepoPullRequests(w.owner, w.bob.Name, sdk.ListPullRequestsOptions{State: sdk.StateAll})
		if err != nil {
			return err
		}
		for _, p := range list {
			if p.Head != nil && p.Head.Ref == branch {
				pr = p
				return nil
			}
		}
		return fmt.Errorf("no pull request from %s in Gitea A (%d pull requests)", branch, len(list))
	})
	return pr
}

// aliceComments and bobComments read the comments of a pull request through its forge's API.
func (w *mrWorkflow) aliceComments(t *testing.T, n int64) func() []*sdk.Comment {
	return func() []*sdk.Comment {
		cs, _, err := w.alice.Client.ListIssueComments(w.alice.Name, w.fork.Name, n, sdk.ListIssueCommentOptions{})
		must(t, err)
		return cs
	}
}

func (w *mrWorkflow) bobComments(t *testing.T, n int64) func() []*sdk.Comment {
	return func() []*sdk.Comment {
		cs, _, err := w.ga.Client.ListIssueComments(w.owner, w.bob.Name, n, sdk.ListIssueCommentOptions{})
		must(t, err)
		return cs
	}
}

// waitComment waits for a comment that matches; count counts them.
func (w *mrWorkflow) waitComment(t *testing.T, list func() []*sdk.Comment, what string, match func(string) bool) {
	t.Helper()
	eventually(t, 90*time.Second, func() error {
		if count(list(), match) > 0 {
			return nil
		}
		return fmt.Errorf("no comment with %s", what)
	})
}

func count(cs []*sdk.Comment, match func(string) bool) int {
	n := 0
	for _, c := range cs {
		if match(c.Body) {
			n++
		}
	}
	return n
}

// setPull closes or reopens a pull request as its owner (Alice in B, Bob in A).
func setPull(t *testing.T, c *sdk.Client, owner, repo string, n int64, state sdk.StateType) {
	t.Helper()
	_, _, err := c.EditPullRequest(owner, repo, n, sdk.EditPullRequestOption{State: &state})
	must(t, err)
}

// waitPullState waits until a pull request is in state.
func waitPullState(t *testing.T, c *sdk.Client, owner, repo string, n int64, state sdk.StateType) {
	t.Helper()
	eventually(t, 90*time.Second, func() error {
		pr, _, err := c.GetPullRequest(owner, repo, n)
		if err != nil || pr.State != state {
			return fmt.Errorf("pull request %s/%s#%d: %v, %v; want %s", owner, repo, n, pr.State, err, state)
		}
		return nil
	})
}

// TestMergeRequestWithdrawnBetweenInstances: Alice closing her offered pull request in
// Gitea B closes Bob's in Gitea A, with a comment crediting her repository, and
// reopening it reopens Bob's; a close from a third actor is refused with 403 and writes
// nothing; alpha sends nothing back (beta receives no Resolve or Undo from R_A); each
// comment is written once. A pull request closed right after it was labelled ends with
// Bob's closed too, whether the close reached alpha before or after the Accept; Bob
// reopening it is told on Alice's pull request.
func TestMergeRequestWithdrawnBetweenInstances(t *testing.T) {
	w := startMRWorkflow(t)
	alicePR, bobPR := w.offer(t, "fix", "Fix the build", true)
	ticket := w.rA + "/merge-requests/" + fmt.Sprint(bobPR.Index)
	bobComments := w.bobComments(t, bobPR.Index)

	t.Run("a close from a third actor is refused and writes nothing", func(t *testing.T) {
		before := len(bobComments())
		third := startUpstreamPeer(t) // a Repository actor on another host, signing as itself
		status, body := third.send(t, w.p, map[string]any{"@context": "https://www.w3.org/ns/activitystreams",
			"id": third.id() + "/activities/close-1", "type": "Resolve", "actor": third.id(), "object": ticket, "to": []string{w.rA}})
		if status != 403 {
			t.Fatalf("Resolve of %s from %s: %d %s, want 403", ticket, third.id(), status, body)
		}
		status, body = third.send(t, w.p, map[string]any{"@context": "https://www.w3.org/ns/activitystreams",
			"id": third.id() + "/activities/reopen-1", "type": "Undo", "actor": third.id(), "to": []string{w.rA},
			"object": map[string]any{"type": "Resolve", "actor": third.id(), "object": ticket}})
		if status != 403 {
			t.Fatalf("Undo{Resolve} of %s from %s: %d %s, want 403", ticket, third.id(), status, body)
		}
		pr, _, err := w.ga.Client.GetPullRequest(w.owner, w.bob.Name, bobPR.Index)
		must(t, err)
		if pr.State != sdk.StateOpen || len(bobComments()) != before {
			t.Errorf("after the refused close: Bob's pull request %s with %d comments, want open with %d", pr.State, len(bobComments()), before)
		}
	})

	closedBy := func(b string) bool {
		return strings.Contains(b, "Closed: the submitter closed") && strings.Contains(b, w.rB)
	}
	reopenedBy := func(b string) bool {
		return strings.Contains(b, "Reopened: the submitter reopened") && strings.Contains(b, w.rB)
	}
	t.Run("Alice closes her pull request: Bob's is closed with a credited comment", func(t *testing.T) {
		setPull(t, w.alice.Client, w.alice.Name, w.fork.Name, alicePR.Index, sdk.StateClosed)
		waitPullState(t, w.ga.Client, w.owner, w.bob.Name, bobPR.Index, sdk.StateClosed)
		w.waitComment(t, bobComments, "the withdrawal", closedBy)
		var found bool
		for _, r := range receivedOf(t, w.alphaStore, w.rA, "Resolve") {
			found = found || (r.ActorID == w.rB && strings.Contains(string(r.Raw), `"object":"`+ticket+`"`))
		}
		if !found {
			t.Errorf("alpha has no Resolve of %s from %s", ticket, w.rB)
		}
		// Alpha published its own Resolve: the close's webhook has been read, and alpha
		// knew it for its own. A reopen that overtakes that webhook (Gitea sends it 1-5 s
		// late) is the race docs/merge-requests.md names: the close then goes back out.
		eventually(t, 90*time.Second, func() error {
			page, _ := json.Marshal(getAS2(t, w.p.alpha, "/actors/bobs-project/outbox?page=true"))
			if !strings.Contains(string(page), `"type":"Resolve"`) || !strings.Contains(string(page), `"object":"`+ticket+`"`) {
				return fmt.Errorf("alpha's outbox has no Resolve of %s yet", ticket)
			}
			return nil
		})
	})

	t.Run("Alice reopens it: Bob's is reopened", func(t *testing.T) {
		setPull(t, w.alice.Client, w.alice.Name, w.fork.Name, alicePR.Index, sdk.StateOpen)
		waitPullState(t, w.ga.Client, w.owner, w.bob.Name, bobPR.Index, sdk.StateOpen)
		w.waitComment(t, bobComments, "the reopening", reopenedBy)
	})

	t.Run("nothing written twice, nothing sent back", func(t *testing.T) {
		// Bob comments after both: once his comment is on Alice's pull request, alpha has
		// processed the webhooks of its own close and reopen, which came before it.
		_, _, err := w.ga.Client.CreateIssueComment(w.owner, w.bob.Name, bobPR.Index, sdk.CreateIssueCommentOption{Body: "Welcome back."})
		must(t, err)
		w.waitComment(t, w.aliceComments(t, alicePR.Index), "Bob's comment", func(b string) bool { return strings.Contains(b, "Welcome back.") })
		cs := bobComments()
		if n, m := count(cs, closedBy), count(cs, reopenedBy); n != 1 || m != 1 {
			t.Errorf("Bob's pull request has %d close and %d reopen notices, want 1 and 1", n, m)
		}
		for _, typ := range []string{"Resolve", "Undo"} {
			for _, r := range receivedOf(t, w.betaSt, w.rB, typ) {
				if r.ActorID == w.rA {
					t.Errorf("beta received a %s from alpha about its own close or reopen: %s", typ, r.Raw)
				}
			}
		}
		for _, c := range w.aliceComments(t, alicePR.Index)() {
			if strings.Contains(c.Body, "closed its") || strings.Contains(c.Body, "reopened its") {
				t.Errorf("Alice's pull request got a notice of her own close or reopen: %s", c.Body)
			}
		}
		pr, _, err := w.alice.Client.GetPullRequest(w.alice.Name, w.fork.Name, alicePR.Index)
		must(t, err)
		if pr.State != sdk.StateOpen {
			t.Errorf("Alice's pull request is %s, want open", pr.State)
		}
	})

	t.Run("closed right after offering: Bob's ends closed, whichever arrived first", func(t *testing.T) {
		w.gitA("checkout", "-q", "-b", "docs", w.base)
		docs := w.commit("DOCS.md", "docs\n", "Document it")
		w.gitB("push", "-q", w.fork.CloneURL, "HEAD:docs")
		w.gb.WaitPushed(t, w.alice.Name, w.fork.Name, "docs", docs)
		early, _ := w.offer(t, "docs", "Document it", false)
		setPull(t, w.alice.Client, w.alice.Name, w.fork.Name, early.Index, sdk.StateClosed)
		bobDocs := w.bobPullFrom(t, w.federated("docs"))
		waitPullState(t, w.ga.Client, w.owner, w.bob.Name, bobDocs.Index, sdk.StateClosed)
		w.waitComment(t, w.bobComments(t, bobDocs.Index), "the withdrawal", closedBy)

		// Bob reopens what Alice withdrew: she is told, and her pull request stays closed.
		setPull(t, w.ga.Client, w.owner, w.bob.Name, bobDocs.Index, sdk.StateOpen)
		w.waitComment(t, w.aliceComments(t, early.Index), "the upstream's reopening", func(b string) bool {
			return strings.Contains(b, "reopened its") && strings.Contains(b, w.rA)
		})
		if pr, _, err := w.alice.Client.GetPullRequest(w.alice.Name, w.fork.Name, early.Index); err != nil || pr.State != sdk.StateClosed {
			t.Errorf("Alice's withdrawn pull request after Bob's reopening: %v, %v; want closed", pr.State, err)
		}
	})
}

// TestUpstreamPushReachesAlice: Bob pushes to the federated branch in Gitea A; alpha
// sends R_A's Push to R_B, and beta writes a comment on Alice's pull request, credited to
// Bob's repository, listing the commit and how to pull it. Alice's branch is not touched,
// and alpha's own mirror push (after Alice's next push) is not reported.
func TestUpstreamPushReachesAlice(t *testing.T) {
	w := startMRWorkflow(t)
	alicePR, bobPR := w.offer(t, "fix", "Fix the build", true)
	federated := w.federated("fix")

	fix2 := w.commit("fix.txt", "fixed on arm64 too\n", "Fix arm64")
	w.gitB("push", "-q", w.fork.CloneURL, "HEAD:fix")
	eventually(t, 90*time.Second, func() error {
		pr, _, err := w.ga.Client.GetPullRequest(w.owner, w.bob.Name, bobPR.Index)
		if err != nil || pr.Head.Sha != fix2 {
			return fmt.Errorf("Bob's pull request head %v, want %s (%v)", pr.Head.Sha, fix2, err)
		}
		return nil
	})

	w.gitA("fetch", "-q", w.bob.CloneURL, federated)
	w.gitA("checkout", "-q", "-b", "bobs", "FETCH_HEAD")
	bobs := w.commit("NOTES.md", "Bob's note\n", "Bob: add release notes")
	w.gitA("push", "-q", w.bob.CloneURL, "HEAD:"+federated)

	aliceComments := w.aliceComments(t, alicePR.Index)
	report := func(b string) bool {
		return strings.Contains(b, "pushed") && strings.Contains(b, "<code>"+federated+"</code>")
	}
	w.waitComment(t, aliceComments, "the report of Bob's push", func(b string) bool {
		return report(b) && strings.Contains(b, bobs[:12]) && strings.Contains(b, "Bob: add release notes") &&
			strings.Contains(b, "git pull "+w.bob.CloneURL+" "+federated) && strings.Contains(b, w.rA)
	})
	if n := count(aliceComments(), report); n != 1 {
		t.Errorf("%d push reports on Alice's pull request, want 1 (Bob's; alpha's own mirror push is not reported)", n)
	}
	for _, c := range aliceComments() {
		if report(c.Body) && strings.Contains(c.Body, fix2[:12]) {
			t.Errorf("alpha's mirror of Alice's own commit was reported as Bob's: %s", c.Body)
		}
	}
	b, _, err := w.alice.Client.GetRepoBranch(w.alice.Name, w.fork.Name, "fix")
	must(t, err)
	if b.Commit.ID != fix2 {
		t.Errorf("Alice's branch is at %s, want %s: Fedforge never writes into it", b.Commit.ID, fix2)
	}
	var pushed bool
	for _, r := range receivedOf(t, w.betaSt, w.rB, "Push") {
		pushed = pushed || (r.ActorID == w.rA && strings.Contains(string(r.Raw), bobs))
	}
	if !pushed {
		t.Errorf("beta has no Push from %s with %s", w.rA, bobs)
	}
}
