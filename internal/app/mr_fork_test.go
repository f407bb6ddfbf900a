package app

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
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
)

// TestMergeRequestOfferedUpstream is the fork side of issue 14 against a real Gitea (forge
// B, Alice's fork, fronted by alpha) and a signed loopback peer playing the upstream
// Repository actor R_A: alpha announces the fork to R_A; Alice's pull request, once
// labelled "upstream", is offered to R_A as the contract says; R_A's Accept is linked on
// the pull request; a push to her branch is addressed to R_A; R_A's Note becomes an
// attributed comment and Alice's comment goes to R_A in reply to its Ticket, with no
// echo of what Fedforge wrote; a Resolve with the merge commit closes her pull request
// with one comment, however often it comes; a Resolve or a Note about the Ticket from
// another host is refused and writes nothing.
func TestMergeRequestOfferedUpstream(t *testing.T) {
	t.Parallel()
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
	write := sdk.AccessModeWrite
	_, err = alice.Client.AddCollaborator(owner, name, bot.Name, sdk.AddCollaboratorOption{Permission: &write})
	must(t, err)
	work := t.TempDir()
	git := func(args ...string) string { return giteatest.Git(t, work, alice.Name, alice.Token, args...) }
	git("init", "-q", "-b", "main")
	must(t, os.WriteFile(filepath.Join(work, "README.md"), []byte("Bob's project, forked.\n"), 0o644))
	git("add", ".")
	git("commit", "-q", "-m", "Import")
	git("push", "-q", repo.CloneURL, "HEAD:main")
	git("checkout", "-q", "-b", "fix")
	must(t, os.WriteFile(filepath.Join(work, "fix.txt"), []byte("fixed\n"), 0o644))
	git("add", ".")
	git("commit", "-q", "-m", "Fix the build")
	git("push", "-q", repo.CloneURL, "HEAD:fix")
	g.WaitPushed(t, owner, name, "fix", git("rev-parse", "HEAD"))

	const secret = "alice-hook-secret"
	must(t, p.k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "alpha", Name: "forge-token"},
		StringData: map[string]string{"token": bot.Token, "hook": secret}}))
	must(t, p.k8s.Create(ctx, &fedv1.FederatedActor{
		ObjectMeta: metav1.ObjectMeta{Namespace: "alpha", Name: "project"},
		Spec: fedv1.FederatedActorSpec{ServerRef: fedv1.LocalObjectReference{Name: "forge"}, Type: fedv1.ActorRepository,
			PreferredUsername: "project",
			Forge:             &fedv1.ForgeAccess{Type: fedv1.ForgeGitea, URL: g.URL, Project: repo.FullName, TokenSecretRef: fedv1.SecretKeyReference{Name: "forge-token"}},
			Sources: []fedv1.EventSource{{Name: "gitea", Type: fedv1.SourceGitea,
				SecretRef: &fedv1.SecretKeyReference{Name: "forge-token", Key: "hook"}}},
			MergeRequests: &fedv1.MergeRequestsSpec{Upstream: up.id(), Label: "upstream"}},
	}))
	rb := p.alpha.base() + "/actors/project"
	ra := up.id()
	waitServed(t, p.alpha, "project")
	_, relayURL := startHookRelay(t, p)
	g.CreateWebhook(t, owner, name, relayURL+"/hooks/project/gitea", secret, "push", "pull_request")

	t.Run("the fork notice reaches the upstream once and the actor says forkedFrom", func(t *testing.T) {
		notice := up.wait(t, "the fork notice", func(d map[string]any) bool { return d["type"] == "Create" && obj(d, "object")["type"] == "Repository" })
		o := obj(notice.doc, "object")
		if notice.doc["actor"] != rb || o["id"] != rb || o["origin"] != ra || o["forkedFrom"] != ra || !slices.Contains(anyStrings(o["cloneUri"]), repo.CloneURL) {
			t.Errorf("fork notice = %v, want Create{Repository %s, origin+forkedFrom %s, cloneUri %s}", notice.doc, rb, ra, repo.CloneURL)
		}
		if doc := getAS2(t, p.alpha, "/actors/project"); doc["forkedFrom"] != ra {
			t.Errorf("R_B's document says forkedFrom %v, want %s", doc["forkedFrom"], ra)
		}
	})

	label, _, err := alice.Client.CreateLabel(owner, name, sdk.CreateLabelOption{Name: "upstream", Color: "#00aabb"})
	must(t, err)
	other, _, err := alice.Client.CreateLabel(owner, name, sdk.CreateLabelOption{Name: "needs-review", Color: "#aa00bb"})
	must(t, err)
	pr, _, err := alice.Client.CreatePullRequest(owner, name, sdk.CreatePullRequestOption{Head: "fix", Base: "main",
		Title: "Fix the build", Body: "The `make` step **failed**."})
	must(t, err)
	isOffer := func(d map[string]any) bool { return d["type"] == "Offer" }
	var offerID string
	t.Run("labelling the pull request offers it to the upstream as the contract says", func(t *testing.T) {
		time.Sleep(2 * time.Second) // the unlabelled opening must not be offered; Gitea delivers within this
		if got := up.received(isOffer); len(got) != 0 {
			t.Fatalf("an unlabelled pull request was offered: %v", got[0].doc)
		}
		labelled := time.Now()
		_, _, err := alice.Client.AddIssueLabels(owner, name, pr.Index, sdk.IssueLabelsOption{Labels: []int64{label.ID}})
		must(t, err)
		offer := up.wait(t, "the Offer", isOffer)
		t.Logf("measured: labelled pull request → signed Offer received by the upstream: %s", offer.at.Sub(labelled).Round(time.Millisecond))
		d := offer.doc
		offerID, _ = d["id"].(string)
		ticket := obj(d, "object")
		patch := obj(ticket, "attachment")
		origin, target := obj(patch, "origin"), obj(patch, "target")
		if d["actor"] != rb || d["target"] != ra || !slices.Contains(anyStrings(d["to"]), ra) || !strings.HasPrefix(offerID, rb+"/activities/offer-mr-1-") {
			t.Errorf("Offer = %v, want from %s to %s with target %s", d, rb, ra, ra)
		}
		if ticket["type"] != "Ticket" || !slices.Equal(anyStrings(ticket["attributedTo"]), []string{rb}) || ticket["summary"] != "Fix the build" ||
			!strings.Contains(fmt.Sprint(ticket["content"]), "alice") || !strings.Contains(fmt.Sprint(obj(ticket, "source")["content"]), "**failed**") {
			t.Errorf("offered Ticket = %v", ticket)
		}
		if patch["type"] != "Offer" || origin["type"] != "Branch" || origin["context"] != rb || origin["ref"] != "refs/heads/fix" || origin["name"] != "fix" ||
			target["type"] != "Branch" || target["context"] != ra || target["ref"] != "refs/heads/main" {
			t.Errorf("attachment = %v, want Offer{origin Branch(%s, refs/heads/fix), target Branch(%s, refs/heads/main)}", patch, rb, ra)
		}
		// Another label change (a second label_updated) offers nothing more.
		_, _, err = alice.Client.AddIssueLabels(owner, name, pr.Index, sdk.IssueLabelsOption{Labels: []int64{other.ID}})
		must(t, err)
		time.Sleep(2 * time.Second)
		if got := up.received(isOffer); len(got) != 1 {
			t.Errorf("the pull request was offered %d times, want once", len(got))
		}
	})
	if offerID == "" {
		t.Fatal("no Offer: the rest depends on it")
	}

	ticket := ra + "/merge-requests/7"
	comments := func(t *testing.T) []*sdk.Comment {
		t.Helper()
		cs, _, err := alice.Client.ListIssueComments(owner, name, pr.Index, sdk.ListIssueCommentOptions{})
		must(t, err)
		return cs
	}
	waitComment := func(t *testing.T, what string, match func(string) bool) {
		t.Helper()
		eventually(t, 90*time.Second, func() error {
			for _, c := range comments(t) {
				if match(c.Body) {
					return nil
				}
			}
			return fmt.Errorf("no comment with %s on pull request #%d", what, pr.Index)
		})
	}
	t.Run("the Accept is recorded and linked on the pull request", func(t *testing.T) {
		code, body := up.send(t, p, map[string]any{"@context": "https://www.w3.org/ns/activitystreams",
			"id": ra + "/activities/accept-1", "type": "Accept", "actor": ra, "to": []string{rb}, "object": offerID, "result": ticket})
		if code != http.StatusAccepted {
			t.Fatalf("Accept answered %d %s", code, body)
		}
		waitComment(t, "the link to the upstream merge request", func(b string) bool { return strings.Contains(b, ticket) && strings.Contains(b, "Offered upstream") })
	})

	t.Run("a push to the offered branch is addressed to the upstream", func(t *testing.T) {
		must(t, os.WriteFile(filepath.Join(work, "fix.txt"), []byte("fixed twice\n"), 0o644))
		git("commit", "-q", "-am", "Fix the build on arm64 too")
		git("push", "-q", repo.CloneURL, "HEAD:fix")
		push := up.wait(t, "the Push", func(d map[string]any) bool { return d["type"] == "Push" })
		if tg := obj(push.doc, "target"); push.doc["actor"] != rb || tg["ref"] != "refs/heads/fix" || tg["context"] != rb ||
			!slices.Contains(anyStrings(push.doc["to"]), ra) {
			t.Errorf("Push = %v, want R_B's push of refs/heads/fix addressed to %s", push.doc, ra)
		}
	})

	t.Run("the upstream's Note becomes an attributed comment; Alice's comment goes to the upstream", func(t *testing.T) {
		code, body := up.send(t, p, map[string]any{"@context": "https://www.w3.org/ns/activitystreams",
			"id": ra + "/activities/note-1", "type": "Create", "actor": ra, "to": []string{rb},
			"object": map[string]any{"id": ticket + "/comments/1", "type": "Note", "attributedTo": ra, "inReplyTo": ticket,
				"content": "<p>Looks good, one nit.</p>", "to": []string{rb}}})
		if code != http.StatusAccepted {
			t.Fatalf("Note answered %d %s", code, body)
		}
		waitComment(t, "the upstream's Note", func(b string) bool {
			return strings.Contains(b, "Looks good, one nit.") && strings.Contains(b, "<"+ra+">")
		})
		_, _, err := alice.Client.CreateIssueComment(owner, name, pr.Index, sdk.CreateIssueCommentOption{Body: "Nit fixed in the last push."})
		must(t, err)
		isNote := func(d map[string]any) bool { return d["type"] == "Create" && obj(d, "object")["type"] == "Note" }
		note := up.wait(t, "Alice's comment", func(d map[string]any) bool {
			return isNote(d) && strings.Contains(fmt.Sprint(obj(d, "object")["source"]), "Nit fixed")
		})
		o := obj(note.doc, "object")
		if note.doc["actor"] != rb || o["inReplyTo"] != ticket || !slices.Contains(anyStrings(note.doc["to"]), ra) || !strings.HasPrefix(fmt.Sprint(o["id"]), rb+"/") {
			t.Errorf("Alice's comment went out as %v, want R_B's Note inReplyTo %s to %s", note.doc, ticket, ra)
		}
		time.Sleep(2 * time.Second) // webhooks of Fedforge's own comments arrive within this
		if n := len(up.received(isNote)); n != 1 {
			t.Errorf("the upstream received %d Notes, want 1 (Fedforge's own comments are not echoed)", n)
		}
	})

	mallory := startLoopPeer(t)
	mal := mallory.actor("mallory", []string{"Person"}, nil)
	t.Run("a Resolve or a Note about the Ticket from another host is refused", func(t *testing.T) {
		before := len(comments(t))
		code, body := mallory.send(t, p.alpha, mal, map[string]any{"@context": "https://www.w3.org/ns/activitystreams",
			"id": mallory.base + "/activities/resolve", "type": "Resolve", "actor": mal, "object": ticket,
			"result": map[string]any{"type": "Commit", "hash": "0000000000000000000000000000000000000000"}})
		if code != http.StatusForbidden {
			t.Errorf("Resolve from another host answered %d %s, want 403", code, body)
		}
		code, body = mallory.send(t, p.alpha, mal, map[string]any{"@context": "https://www.w3.org/ns/activitystreams",
			"id": mallory.base + "/activities/note", "type": "Create", "actor": mal,
			"object": map[string]any{"id": mallory.base + "/notes/1", "type": "Note", "attributedTo": mal, "inReplyTo": ticket, "content": "<p>spam</p>"}})
		if code != http.StatusForbidden {
			t.Errorf("Note from another host answered %d %s, want 403", code, body)
		}
		time.Sleep(2 * time.Second)
		if after := len(comments(t)); after != before {
			t.Errorf("%d comments written after refused input", after-before)
		}
		if pr, _, err := alice.Client.GetPullRequest(owner, name, pr.Index); err != nil || pr.State != sdk.StateOpen {
			t.Errorf("pull request after a refused Resolve: %v, %v", pr.State, err)
		}
	})

	t.Run("an edited Note edits its comment; a close without merge and a reopening are told", func(t *testing.T) {
		code, body := up.send(t, p, map[string]any{"@context": "https://www.w3.org/ns/activitystreams",
			"id": ra + "/activities/note-1-edit", "type": "Update", "actor": ra, "to": []string{rb},
			"object": map[string]any{"id": ticket + "/comments/1", "type": "Note", "attributedTo": ra, "inReplyTo": ticket,
				"content": "<p>Looks good now.</p>", "to": []string{rb}}})
		if code != http.StatusAccepted {
			t.Fatalf("Update answered %d %s", code, body)
		}
		waitComment(t, "the edited Note", func(b string) bool { return strings.Contains(b, "Looks good now.") })
		if code, body := up.send(t, p, map[string]any{"@context": "https://www.w3.org/ns/activitystreams",
			"id": ra + "/activities/close-1", "type": "Resolve", "actor": ra, "to": []string{rb}, "object": ticket}); code != http.StatusAccepted {
			t.Fatalf("Resolve without result answered %d %s", code, body)
		}
		waitComment(t, "the close without merge", func(b string) bool { return strings.Contains(b, "without merging") })
		if pr, _, err := alice.Client.GetPullRequest(owner, name, pr.Index); err != nil || pr.State != sdk.StateOpen {
			t.Errorf("pull request after a close without merge upstream: %v, %v; want open", pr.State, err)
		}
		if code, body := up.send(t, p, map[string]any{"@context": "https://www.w3.org/ns/activitystreams",
			"id": ra + "/activities/reopen-1", "type": "Undo", "actor": ra, "to": []string{rb},
			"object": map[string]any{"type": "Resolve", "actor": ra, "object": ticket}}); code != http.StatusAccepted {
			t.Fatalf("Undo{Resolve} answered %d %s", code, body)
		}
		waitComment(t, "the reopening", func(b string) bool { return strings.Contains(b, "reopened its") })
	})

	t.Run("the upstream's Resolve with the merge commit closes the pull request, once", func(t *testing.T) {
		const hash = "8f3c1e0a9b7d6c5e4f3a2b1c0d9e8f7a6b5c4d3e"
		resolve := map[string]any{"@context": "https://www.w3.org/ns/activitystreams",
			"id": ra + "/activities/resolve-1", "type": "Resolve", "actor": ra, "to": []string{rb}, "object": ticket,
			"result": map[string]any{"type": "Commit", "hash": hash}}
		sent := time.Now()
		if code, body := up.send(t, p, resolve); code != http.StatusAccepted {
			t.Fatalf("Resolve answered %d %s", code, body)
		}
		eventually(t, 90*time.Second, func() error {
			pr, _, err := alice.Client.GetPullRequest(owner, name, pr.Index)
			if err != nil || pr.State != sdk.StateClosed {
				return fmt.Errorf("pull request #%d: %v, %v", pr.Index, pr.State, err)
			}
			return nil
		})
		t.Logf("measured: Resolve sent → Alice's pull request closed (seen through the API): %s", time.Since(sent).Round(time.Millisecond))
		isMerged := func(b string) bool { return strings.Contains(b, "Merged upstream as") && strings.Contains(b, hash) }
		waitComment(t, "the merge notice", isMerged)
		// The same Resolve again, and another Resolve of the same Ticket: one comment.
		up.send(t, p, resolve)
		resolve["id"] = ra + "/activities/resolve-2"
		if code, body := up.send(t, p, resolve); code != http.StatusAccepted {
			t.Errorf("a second Resolve answered %d %s", code, body)
		}
		time.Sleep(2 * time.Second)
		n := 0
		for _, c := range comments(t) {
			if isMerged(c.Body) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d merge notices on the pull request, want 1", n)
		}
		if n := len(up.received(func(d map[string]any) bool { return obj(d, "object")["type"] == "Repository" })); n != 1 {
			t.Errorf("the upstream received %d fork notices over the whole exchange, want 1", n)
		}
	})

	t.Run("a pull request opened with the label is offered; a Reject's reason is written on it", func(t *testing.T) {
		_, _, err := alice.Client.CreateFile(owner, name, "docs.md", sdk.CreateFileOptions{
			FileOptions: sdk.FileOptions{BranchName: "main", NewBranchName: "docs", Message: "Docs"},
			Content:     base64.StdEncoding.EncodeToString([]byte("docs\n"))})
		must(t, err)
		pr2, _, err := alice.Client.CreatePullRequest(owner, name, sdk.CreatePullRequestOption{Head: "docs", Base: "main",
			Title: "Add docs", Body: "Docs.", Labels: []int64{label.ID}})
		must(t, err)
		offer := up.wait(t, "the second Offer", func(d map[string]any) bool {
			return isOffer(d) && obj(obj(obj(d, "object"), "attachment"), "origin")["ref"] == "refs/heads/docs"
		})
		if code, body := up.send(t, p, map[string]any{"@context": "https://www.w3.org/ns/activitystreams",
			"id": ra + "/activities/reject-2", "type": "Reject", "actor": ra, "to": []string{rb}, "object": offer.doc["id"],
			"summary": "branch docs is larger than the <b>cap</b>"}); code != http.StatusAccepted {
			t.Fatalf("Reject answered %d %s", code, body)
		}
		eventually(t, 90*time.Second, func() error {
			cs, _, err := alice.Client.ListIssueComments(owner, name, pr2.Index, sdk.ListIssueCommentOptions{})
			if err != nil {
				return err
			}
			for _, c := range cs {
				if strings.Contains(c.Body, "did not take this pull request") && strings.Contains(c.Body, "larger than the cap") {
					return nil
				}
			}
			return fmt.Errorf("no Reject comment on pull request #%d (%d comments)", pr2.Index, len(cs))
		})
	})
}

// anyStrings reads an AS2 field that is a string or a list of strings.
func anyStrings(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}
