package app

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	sdk "code.gitea.io/sdk/gitea"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/forge/giteatest"
)

// TestMergeRequestTicketUpstream (issue 14, upstream side A): the result of the Accept of
// a merge-request Offer, <R_A>/merge-requests/<n>, dereferences to a ForgeFed merge
// request Ticket read from the real Gitea: attributed to the offering actor R_B, without
// Fedforge's credit line, its attachment an Offer of R_B's branch into R_A's, its url the
// pull request's page, its followers R_B; after Bob's merge it is resolved by the merged
// Resolve whose result is the merge commit. A pull request opened in forge A is a Ticket
// of its forge user with the forge's branches. A number that is no pull request, an
// issue's number, an actor without a forge: 404. Under authorized fetch an unsigned GET
// is 401 and R_B's signed GET is served.
func TestMergeRequestTicketUpstream(t *testing.T) {
	g := giteatest.Start(t)
	ctx := context.Background()

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
	fix := commit("fix.txt", "fixed\n", "Fix the thing")
	git("push", "-q", fork.CloneURL, "HEAD:refs/heads/fix")
	g.WaitPushed(t, owner, fork.Name, "fix", fix)
	git("checkout", "-q", "-b", "feature", "main")
	feature := commit("feature.txt", "new\n", "A feature of Bob's")
	git("push", "-q", bob.CloneURL, "HEAD:refs/heads/feature")
	g.WaitPushed(t, owner, bob.Name, "feature", feature)

	fp := newForkPeer(t, map[string]string{"project": fork.CloneURL})
	p := newPair(t, fp.host+"="+fp.addr)
	fp.attach(p.alpha.listen)
	bot := g.CreateUser(t, "fedforge-bot", "write:repository", "write:issue")
	_, err := g.Client.AddCollaborator(owner, bob.Name, bot.Name, sdk.AddCollaboratorOption{Permission: ptrTo(sdk.AccessModeWrite)})
	must(t, err)
	const secret = "mr-doc-hook-secret"
	must(t, p.k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "alpha", Name: "forge-token"},
		StringData: map[string]string{"token": bot.Token, "secret": secret}}))
	must(t, p.k8s.Create(ctx, &fedv1.FederatedActor{ObjectMeta: metav1.ObjectMeta{Namespace: "alpha", Name: "project"},
		Spec: fedv1.FederatedActorSpec{ServerRef: fedv1.LocalObjectReference{Name: "forge"}, Type: fedv1.ActorRepository,
			PreferredUsername: "project", MergeRequests: &fedv1.MergeRequestsSpec{Accept: true},
			Forge: &fedv1.ForgeAccess{Type: fedv1.ForgeGitea, URL: g.URL, Project: bob.FullName, TokenSecretRef: fedv1.SecretKeyReference{Name: "forge-token"}},
			Sources: []fedv1.EventSource{{Name: "gitea", Type: fedv1.SourceGitea,
				SecretRef: &fedv1.SecretKeyReference{Name: "forge-token", Key: "secret"}, Events: []string{"MergeRequest"}}}}}))
	waitServed(t, p.alpha, "project")
	p.actor(t, p.alpha, "plain", "plain", false) // an actor without a forge
	_, relayURL := startHookRelay(t, p)
	g.CreateWebhook(t, owner, bob.Name, relayURL+"/hooks/project/gitea", secret, "pull_request")

	rA := p.alpha.base() + "/actors/project"
	rB := fp.actor("project")
	waitAnswer := func(t *testing.T, typ, object string) map[string]any {
		t.Helper()
		var got []map[string]any
		eventually(t, 90*time.Second, func() error {
			if got = fp.answers(typ, object); len(got) == 0 {
				return fmt.Errorf("no verified %s of %s yet (unverified: %v)", typ, object, fp.unverified)
			}
			return nil
		})
		return got[0]
	}

	offerID := "http://" + fp.host + "/repos/project/offers/doc-1"
	if code, body := fp.send(t, p, "project", fp.offer(offerID, "project", rA, "Fix the thing", "refs/heads/fix")); code != http.StatusAccepted {
		t.Fatalf("Offer answered %d %s", code, body)
	}
	ticket, _ := waitAnswer(t, "Accept", offerID)["result"].(string)
	path, ok := strings.CutPrefix(ticket, rA+"/merge-requests/")
	if !ok {
		t.Fatalf("Accept's result %q is not a merge request of %s", ticket, rA)
	}
	path = "/actors/project/merge-requests/" + path
	prs, _, err := g.Client.ListRepoPullRequests(owner, bob.Name, sdk.ListPullRequestsOptions{State: sdk.StateAll})
	must(t, err)
	if len(prs) != 1 || ticket != fmt.Sprintf("%s/merge-requests/%d", rA, prs[0].Index) {
		t.Fatalf("%d pull requests in forge A for the Ticket %s", len(prs), ticket)
	}
	pr := prs[0]

	t.Run("the Accept's result dereferences to the merge-request Ticket", func(t *testing.T) {
		code, h, body := get(t, p.alpha, path, activitypub.AcceptActivity, nil)
		if code != http.StatusOK || !strings.Contains(h.Get("Content-Type"), "activity+json") || h.Get("Cache-Control") != "max-age=30" {
			t.Fatalf("GET %s: %d %s %q", path, code, h.Get("Content-Type"), body)
		}
		doc := getAS2(t, p.alpha, path)
		if !strings.Contains(fmt.Sprint(doc["@context"]), activitypub.ForgeFedContext) {
			t.Errorf("@context %v lacks ForgeFed", doc["@context"])
		}
		want := map[string]any{"id": ticket, "type": "Ticket", "context": rA, "attributedTo": "[" + rB + "]", "name": "Fix the thing",
			"summary": "Fix the thing", "isResolved": false, "replies": ticket + "/replies", "followers": ticket + "/followers",
			"url": "[" + pr.HTMLURL + "]", "mediaType": "text/html"}
		for k, v := range want {
			if fmt.Sprint(doc[k]) != fmt.Sprint(v) {
				t.Errorf("Ticket %s = %v, want %v", k, doc[k], v)
			}
		}
		src := fmt.Sprint(obj(doc, "source")["content"])
		if src != "Please merge `refs/heads/fix`." || doc["content"] != "<p>Please merge <code>refs/heads/fix</code>.</p>" {
			t.Errorf("Ticket source %q / content %v, want Alice's text without the credit line and key marker", src, doc["content"])
		}
		if published, _ := doc["published"].(string); published == "" || doc["resolvedBy"] != nil || doc["resolved"] != nil {
			t.Errorf("Ticket published %v, resolvedBy %v, resolved %v; want published, not resolved", doc["published"], doc["resolvedBy"], doc["resolved"])
		}
		att := obj(doc, "attachment")
		origin, target := obj(att, "origin"), obj(att, "target")
		if att["type"] != "Offer" || origin["type"] != "Branch" || origin["context"] != rB || origin["ref"] != "refs/heads/fix" || origin["name"] != "fix" ||
			target["type"] != "Branch" || target["context"] != rA || target["ref"] != "refs/heads/main" || target["name"] != "main" {
			t.Errorf("attachment = %v, want Offer{origin R_B's fix as offered, target R_A's main}", att)
		}
		if diff := obj(att, "mrDiff"); diff["type"] != "Link" || diff["href"] != pr.DiffURL {
			t.Errorf("mrDiff = %v, want a Link to %s", diff, pr.DiffURL)
		}
	})

	t.Run("its followers are the offering actor, its replies the Notes written as comments", func(t *testing.T) {
		if f := getAS2(t, p.alpha, path+"/followers"); f["id"] != ticket+"/followers" || !slices.Contains(anyStrings(f["orderedItems"]), rB) {
			t.Errorf("followers = %v, want %s listed", f, rB)
		}
		if r := getAS2(t, p.alpha, path+"/replies"); r["id"] != ticket+"/replies" || r["type"] != "OrderedCollection" || fmt.Sprint(r["totalItems"]) != "0" {
			t.Errorf("replies = %v, want an empty OrderedCollection", r)
		}
	})

	t.Run("a pull request opened in forge A is a Ticket of its forge user with the forge's branches", func(t *testing.T) {
		born, _, err := g.Client.CreatePullRequest(owner, bob.Name, sdk.CreatePullRequestOption{Head: "feature", Base: "main",
			Title: "Opened in Gitea", Body: "Born **here**."})
		must(t, err)
		id := fmt.Sprintf("%s/merge-requests/%d", rA, born.Index)
		doc := getAS2(t, p.alpha, fmt.Sprintf("/actors/project/merge-requests/%d", born.Index))
		att := obj(doc, "attachment")
		origin, target := obj(att, "origin"), obj(att, "target")
		if doc["id"] != id || doc["type"] != "Ticket" || fmt.Sprint(doc["attributedTo"]) != "["+g.URL+"/"+g.AdminUser+"]" ||
			fmt.Sprint(obj(doc, "source")["content"]) != "Born **here**." || doc["isResolved"] != false {
			t.Errorf("forge-born merge request = %v, want attributed to the Gitea user's profile", doc)
		}
		if origin["context"] != rA || origin["ref"] != "refs/heads/feature" || target["context"] != rA || target["ref"] != "refs/heads/main" {
			t.Errorf("forge-born attachment = %v, want feature → main of %s", att, rA)
		}
	})

	t.Run("what is no pull request of a repository with a forge is 404", func(t *testing.T) {
		issue, _, err := g.Client.CreateIssue(owner, bob.Name, sdk.CreateIssueOption{Title: "An issue, not a pull request"})
		must(t, err)
		for _, path := range []string{
			"/actors/project/merge-requests/999",
			fmt.Sprintf("/actors/project/merge-requests/%d", issue.Index),
			fmt.Sprintf("/actors/project/issues/%d", pr.Index),
			"/actors/project/merge-requests/0",
			"/actors/project/merge-requests/01",
			"/actors/project/merge-requests/x",
			"/actors/plain/merge-requests/1",
			"/actors/plain/merge-requests/1/replies",
			"/actors/nobody/merge-requests/1",
		} {
			if code, _, body := get(t, p.alpha, path, activitypub.AcceptActivity, nil); code != http.StatusNotFound {
				t.Errorf("GET %s: %d %s, want 404", path, code, body)
			}
		}
		if doc := getAS2(t, p.alpha, fmt.Sprintf("/actors/project/issues/%d", issue.Index)); doc["type"] != "Ticket" {
			t.Errorf("the issue's own Ticket = %v", doc)
		}
	})

	t.Run("after Bob's merge the Ticket is resolved by the Resolve with the merge commit", func(t *testing.T) {
		// Read (and cache) the open Ticket just before the merge: the merge's webhook drops it.
		if doc := getAS2(t, p.alpha, path); doc["isResolved"] != false {
			t.Fatalf("Ticket before the merge: isResolved %v", doc["isResolved"])
		}
		eventually(t, 60*time.Second, func() error { // Gitea checks mergeability in a queue first
			ok, _, err := g.Client.MergePullRequest(owner, bob.Name, pr.Index, sdk.MergePullRequestOption{Style: sdk.MergeStyleMerge, Title: "Merge Alice's fix"})
			if err != nil || !ok {
				return fmt.Errorf("merge: %v %v", ok, err)
			}
			return nil
		})
		merged, _, err := g.Client.GetPullRequest(owner, bob.Name, pr.Index)
		must(t, err)
		if !merged.HasMerged || merged.MergedCommitID == nil {
			t.Fatalf("pull request not merged: %+v", merged)
		}
		waitAnswer(t, "Resolve", ticket) // sent after the webhook dropped the cached pull request
		doc := getAS2(t, p.alpha, path)
		by := obj(doc, "resolvedBy")
		result := obj(by, "result")
		if doc["isResolved"] != true || doc["resolved"] == nil || by["type"] != "Resolve" || by["actor"] != rA || by["object"] != ticket ||
			result["type"] != "Commit" || result["hash"] != *merged.MergedCommitID || result["context"] != rA {
			t.Errorf("merged Ticket isResolved %v resolved %v resolvedBy %v; want resolved by a Resolve with Commit %s",
				doc["isResolved"], doc["resolved"], doc["resolvedBy"], *merged.MergedCommitID)
		}
		if origin := obj(obj(doc, "attachment"), "origin"); origin["context"] != rB {
			t.Errorf("merged Ticket's origin = %v, want R_B's branch still", origin)
		}
	})

	t.Run("under authorized fetch the Ticket needs a signed GET, which R_B's is", func(t *testing.T) {
		var fs fedv1.FederationServer
		must(t, p.k8s.Get(ctx, types.NamespacedName{Namespace: "alpha", Name: "forge"}, &fs))
		patchBase := fs.DeepCopy()
		fs.Spec.AuthorizedFetch = true
		must(t, p.k8s.Patch(ctx, &fs, client.MergeFrom(patchBase)))
		eventually(t, 30*time.Second, func() error {
			if code, _, _ := get(t, p.alpha, path, activitypub.AcceptActivity, nil); code != http.StatusUnauthorized {
				return fmt.Errorf("unsigned GET of the Ticket: %d, want 401", code)
			}
			return nil
		})
		for _, sub := range []string{"/replies", "/followers"} {
			if code, _, _ := get(t, p.alpha, path+sub, activitypub.AcceptActivity, nil); code != http.StatusUnauthorized {
				t.Errorf("unsigned GET of %s: %d, want 401", sub, code)
			}
		}
		sign := func(r *http.Request) {
			must(t, activitypub.SignCavage(r, nil, fp.key, rB+"#main-key", activitypub.CavageOptions{}))
		}
		for _, sub := range []string{"", "/replies", "/followers"} {
			if code, _, body := get(t, p.alpha, path+sub, activitypub.AcceptActivity, sign); code != http.StatusOK || !strings.Contains(string(body), ticket) {
				t.Errorf("signed GET of %s: %d %s", path+sub, code, body)
			}
		}
	})
}

// TestMergeRequestTicketFork (issue 14, fork side B): the Ticket alpha offers for Alice's
// labelled pull request has the id <R_B>/merge-requests/<n>, and that id dereferences to
// the Ticket that was offered (attributed to R_B, naming Alice, its attachment her branch
// into the upstream's), read from the real Gitea; a pull request that was not offered is
// a Ticket of its forge user with both branches in R_B's repository, and resolved once
// closed.
func TestMergeRequestTicketFork(t *testing.T) {
	g := giteatest.Start(t)
	up := startUpstreamPeer(t)
	p := newPair(t)
	up.attach(p.alpha.listen)
	ctx := context.Background()

	alice := g.CreateUser(t, "alice")
	repo, _, err := alice.Client.CreateRepo(sdk.CreateRepoOption{Name: "project", DefaultBranch: "main"})
	must(t, err)
	owner, name := repo.Owner.UserName, repo.Name
	bot := g.CreateUser(t, "fedforge-bot", "read:repository", "write:issue")
	_, err = alice.Client.AddCollaborator(owner, name, bot.Name, sdk.AddCollaboratorOption{Permission: ptrTo(sdk.AccessModeWrite)})
	must(t, err)
	work := t.TempDir()
	git := func(args ...string) string { return giteatest.Git(t, work, alice.Name, alice.Token, args...) }
	branch := func(name, file string) {
		git("checkout", "-q", "-b", name, "main")
		must(t, os.WriteFile(filepath.Join(work, file), []byte(name+"\n"), 0o644))
		git("add", ".")
		git("commit", "-q", "-m", "Work on "+name)
		git("push", "-q", repo.CloneURL, "HEAD:"+name)
		g.WaitPushed(t, owner, repo.Name, name, git("rev-parse", "HEAD"))
	}
	git("init", "-q", "-b", "main")
	must(t, os.WriteFile(filepath.Join(work, "README.md"), []byte("Bob's project, forked.\n"), 0o644))
	git("add", ".")
	git("commit", "-q", "-m", "Import")
	git("push", "-q", repo.CloneURL, "HEAD:main")
	branch("fix", "fix.txt")
	branch("docs", "docs.txt")

	api := startAPICounter(t, g.URL) // alpha reads forge B through it: the forge calls are counted
	const secret = "alice-doc-hook-secret"
	must(t, p.k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "alpha", Name: "forge-token"},
		StringData: map[string]string{"token": bot.Token, "hook": secret}}))
	must(t, p.k8s.Create(ctx, &fedv1.FederatedActor{ObjectMeta: metav1.ObjectMeta{Namespace: "alpha", Name: "project"},
		Spec: fedv1.FederatedActorSpec{ServerRef: fedv1.LocalObjectReference{Name: "forge"}, Type: fedv1.ActorRepository,
			PreferredUsername: "project",
			Forge:             &fedv1.ForgeAccess{Type: fedv1.ForgeGitea, URL: api.url, Project: repo.FullName, TokenSecretRef: fedv1.SecretKeyReference{Name: "forge-token"}},
			Sources: []fedv1.EventSource{{Name: "gitea", Type: fedv1.SourceGitea,
				SecretRef: &fedv1.SecretKeyReference{Name: "forge-token", Key: "hook"}}},
			MergeRequests: &fedv1.MergeRequestsSpec{Upstream: up.id(), Label: "upstream"}}}))
	rb := p.alpha.base() + "/actors/project"
	ra := up.id()
	waitServed(t, p.alpha, "project")
	_, relayURL := startHookRelay(t, p)
	g.CreateWebhook(t, owner, name, relayURL+"/hooks/project/gitea", secret, "push", "pull_request")

	label, _, err := alice.Client.CreateLabel(owner, name, sdk.CreateLabelOption{Name: "upstream", Color: "#00aabb"})
	must(t, err)
	pr, _, err := alice.Client.CreatePullRequest(owner, name, sdk.CreatePullRequestOption{Head: "fix", Base: "main",
		Title: "Fix the build", Body: "The `make` step **failed**.", Labels: []int64{label.ID}})
	must(t, err)

	t.Run("the offered Ticket's id dereferences to the Ticket that was offered", func(t *testing.T) {
		offer := up.wait(t, "the Offer", func(d map[string]any) bool { return d["type"] == "Offer" })
		offered := obj(offer.doc, "object")
		id := fmt.Sprintf("%s/merge-requests/%d", rb, pr.Index)
		if offered["id"] != id {
			t.Fatalf("offered Ticket id %v, want %s", offered["id"], id)
		}
		doc := getAS2(t, p.alpha, strings.TrimPrefix(id, p.alpha.base()))
		for _, k := range []string{"id", "type", "attributedTo", "name", "summary", "content", "source", "url", "attachment"} {
			if fmt.Sprint(doc[k]) != fmt.Sprint(offered[k]) && k != "attachment" {
				t.Errorf("served Ticket %s = %v, offered %v", k, doc[k], offered[k])
			}
		}
		att := obj(doc, "attachment")
		origin, target := obj(att, "origin"), obj(att, "target")
		if att["type"] != "Offer" || origin["context"] != rb || origin["ref"] != "refs/heads/fix" || target["context"] != ra || target["ref"] != "refs/heads/main" {
			t.Errorf("served attachment = %v, want R_B's fix offered into R_A's main", att)
		}
		if doc["context"] != rb || doc["isResolved"] != false || doc["replies"] != id+"/replies" || doc["followers"] != id+"/followers" ||
			!strings.Contains(fmt.Sprint(doc["content"]), "alice") || fmt.Sprint(doc["url"]) != "["+pr.HTMLURL+"]" {
			t.Errorf("served Ticket = %v", doc)
		}
		if f := getAS2(t, p.alpha, strings.TrimPrefix(id, p.alpha.base())+"/followers"); f["type"] != "OrderedCollection" {
			t.Errorf("followers = %v", f)
		}
		// A storm of GETs of one merge-request Ticket costs at most one forge call per 30 s.
		api.reset()
		var wg sync.WaitGroup
		for range 20 {
			wg.Add(1)
			go func() { defer wg.Done(); _ = getAS2(t, p.alpha, strings.TrimPrefix(id, p.alpha.base())) }()
		}
		wg.Wait()
		for range 20 {
			_ = getAS2(t, p.alpha, strings.TrimPrefix(id, p.alpha.base()))
		}
		if calls := api.pullCalls(); len(calls) > 1 {
			t.Errorf("40 GETs of a merge-request Ticket made %d forge calls: %v", len(calls), calls)
		}
	})

	t.Run("a pull request not offered is its forge user's Ticket, resolved once closed", func(t *testing.T) {
		other, _, err := alice.Client.CreatePullRequest(owner, name, sdk.CreatePullRequestOption{Head: "docs", Base: "main", Title: "Docs"})
		must(t, err)
		path := fmt.Sprintf("/actors/project/merge-requests/%d", other.Index)
		doc := getAS2(t, p.alpha, path)
		att := obj(doc, "attachment")
		origin, target := obj(att, "origin"), obj(att, "target")
		if fmt.Sprint(doc["attributedTo"]) != "["+g.URL+"/alice]" || doc["isResolved"] != false ||
			origin["context"] != rb || origin["ref"] != "refs/heads/docs" || target["context"] != rb || target["ref"] != "refs/heads/main" {
			t.Errorf("Ticket of a pull request not offered = %v", doc)
		}
		closed := sdk.StateClosed
		_, _, err = alice.Client.EditPullRequest(owner, name, other.Index, sdk.EditPullRequestOption{State: &closed})
		must(t, err)
		eventually(t, 60*time.Second, func() error { // the close's webhook drops the cached pull request
			doc := getAS2(t, p.alpha, path)
			if doc["isResolved"] != true || doc["resolved"] == nil || doc["resolvedBy"] != nil {
				return fmt.Errorf("closed pull request's Ticket: isResolved %v resolved %v resolvedBy %v", doc["isResolved"], doc["resolved"], doc["resolvedBy"])
			}
			return nil
		})
	})
}

// pullCalls are the recorded calls on pull requests.
func (c *apiCounter) pullCalls() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, call := range c.calls {
		if strings.Contains(call, "/pulls") {
			out = append(out, call)
		}
	}
	return out
}
