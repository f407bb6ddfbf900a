package gitea_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	sdk "code.gitea.io/sdk/gitea"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/forge"
	"github.com/fedforge/fedforge/internal/forge/gitea"
	"github.com/fedforge/fedforge/internal/forge/giteatest"
)

// loopbackClient is the guarded forge API client with loopback allowed, as a server whose
// allowedPrivateCIDRs lists 127.0.0.0/8 has it.
func loopbackClient() *http.Client {
	guard := activitypub.NewClient(activitypub.ClientConfig{AllowHTTP: true,
		AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	return forge.NewAPIClient(guard, forge.APIClientConfig{})
}

func newWriter(t *testing.T, url, project, token string, hc *http.Client) *gitea.Writer {
	t.Helper()
	w, err := gitea.NewWriter(gitea.Access{Type: fedv1.SourceGitea, URL: url, Project: project, Token: token, HTTPClient: hc, UserAgent: "fedforge-test"})
	if err != nil {
		t.Fatalf("NewWriter: %v", err)
	}
	return w
}

// TestWriterAgainstRealGitea writes into a real Gitea with a least-privilege token
// (read:repository, write:issue): an issue crediting its remote author, a comment, a
// close; a pull request between two branches with a repository-scoped token; and the
// probe's answers for a read-only token, a wrong token and a forge that is down.
func TestWriterAgainstRealGitea(t *testing.T) {
	g := giteatest.Start(t)
	ctx := t.Context()
	repo, _, err := g.Client.CreateRepo(sdk.CreateRepoOption{Name: "written", AutoInit: true, Readme: "Default", DefaultBranch: "main"})
	if err != nil {
		t.Fatalf("create repository: %v", err)
	}
	fr := forge.Repository{Name: repo.Name, FullName: repo.FullName, WebURL: repo.HTMLURL, CloneURL: repo.CloneURL}
	bot := g.CreateUser(t, "fedforge", "read:repository", "write:issue")
	w := newWriter(t, g.URL, repo.FullName, bot.Token, loopbackClient())
	alice := forge.RemoteAuthor{Handle: "@alice@social.example", URL: "https://social.example/users/alice", Name: "Alice [admin](javascript:x)"}

	t.Run("probe", func(t *testing.T) {
		info, err := w.Check(ctx)
		if err != nil {
			t.Fatalf("Check: %v", err)
		}
		if info.CloneURL != repo.CloneURL || info.WebURL != repo.HTMLURL || info.ForkedFrom != "" {
			t.Errorf("Check = %+v, want clone %s, page %s, no parent", info, repo.CloneURL, repo.HTMLURL)
		}
	})

	t.Run("probe of a fork names its parent", func(t *testing.T) {
		forker := g.CreateUser(t, "forker")
		fork, _, err := forker.Client.CreateFork(g.AdminUser, repo.Name, sdk.CreateForkOption{})
		if err != nil {
			t.Fatalf("fork: %v", err)
		}
		info, err := newWriter(t, g.URL, fork.FullName, bot.Token, loopbackClient()).Check(ctx)
		if err != nil {
			t.Fatalf("Check of the fork: %v", err)
		}
		if info.ForkedFrom != repo.HTMLURL || info.CloneURL != fork.CloneURL {
			t.Errorf("Check of the fork = %+v, want forkedFrom %s", info, repo.HTMLURL)
		}
	})

	t.Run("issue, comment, close", func(t *testing.T) {
		ref, err := w.CreateIssue(ctx, fr, forge.Ticket{Key: "https://social.example/activities/1", Title: "Crash on start",
			Body: "It crashes when *started* with <script>x</script>.", Format: forge.FormatPlain, Author: alice,
			ObjectID: "https://social.example/notes/1", Labels: []string{"no-such-label"}})
		if err != nil {
			t.Fatalf("CreateIssue: %v", err)
		}
		if ref.Number == 0 || !strings.HasPrefix(ref.URL, repo.HTMLURL+"/issues/") || !ref.Created {
			t.Errorf("CreateIssue ref = %+v", ref)
		}
		is, _, err := g.Client.GetIssue(g.AdminUser, repo.Name, ref.Number)
		if err != nil {
			t.Fatalf("read issue back: %v", err)
		}
		for _, want := range []string{"[Alice \\[admin\\]\\(javascript\\:x\\) \\(\\@alice\\@social\\.example\\)](<https://social.example/users/alice>)",
			"[original](<https://social.example/notes/1>)", "\\<script\\>", gitea.KeyMarker + "https://social.example/activities/1 -->"} {
			if !strings.Contains(is.Body, want) {
				t.Errorf("issue body lacks %q:\n%s", want, is.Body)
			}
		}
		if is.Poster.UserName != "fedforge" || is.State != sdk.StateOpen {
			t.Errorf("issue poster %s state %s, want fedforge, open", is.Poster.UserName, is.State)
		}

		cref, err := w.Comment(ctx, fr, ref.Number, forge.Comment{Key: "https://social.example/activities/2",
			Body: "<p>Same here, <b>twice</b><img src=x onerror=alert(1)></p>", Format: forge.FormatHTML, Author: alice, ObjectID: "https://social.example/notes/2"})
		if err != nil {
			t.Fatalf("Comment: %v", err)
		}
		if !strings.Contains(cref.URL, "#issuecomment-") {
			t.Errorf("comment URL %q has no anchor", cref.URL)
		}
		comments, _, err := g.Client.ListIssueComments(g.AdminUser, repo.Name, ref.Number, sdk.ListIssueCommentOptions{})
		if err != nil || len(comments) != 1 {
			t.Fatalf("comments read back: %v, %d", err, len(comments))
		}
		if c := comments[0].Body; !strings.Contains(c, "<b>twice</b>") || strings.Contains(c, "onerror") {
			t.Errorf("comment body not sanitised as expected:\n%s", c)
		}

		for range 2 { // closing a closed issue succeeds
			if err := w.CloseIssue(ctx, fr, ref.Number, "https://social.example/activities/3"); err != nil {
				t.Fatalf("CloseIssue: %v", err)
			}
		}
		if is, _, _ := g.Client.GetIssue(g.AdminUser, repo.Name, ref.Number); is == nil || is.State != sdk.StateClosed {
			t.Errorf("issue not closed: %+v", is)
		}
	})

	t.Run("pull request between branches", func(t *testing.T) {
		if _, _, err := g.Client.CreateFile(g.AdminUser, repo.Name, "fix.txt", sdk.CreateFileOptions{
			FileOptions: sdk.FileOptions{BranchName: "main", NewBranchName: "fix", Message: "Fix it"},
			Content:     base64.StdEncoding.EncodeToString([]byte("fixed\n"))}); err != nil {
			t.Fatalf("commit on branch fix: %v", err)
		}
		maintainer := newWriter(t, g.URL, repo.FullName, g.Token, loopbackClient())
		ref, err := maintainer.OpenMergeRequest(ctx, fr, forge.MergeRequest{Key: "https://social.example/activities/4", Title: "Fix it",
			Body: "Please merge.", Format: forge.FormatMarkdown, Author: alice, SourceBranch: "fix", TargetBranch: "main"})
		if err != nil {
			t.Fatalf("OpenMergeRequest: %v", err)
		}
		pr, _, err := g.Client.GetPullRequest(g.AdminUser, repo.Name, ref.Number)
		if err != nil || pr.Head.Ref != "fix" || pr.Base.Ref != "main" || !strings.Contains(pr.Body, "@alice") {
			t.Errorf("pull request read back: %v, %+v", err, pr)
		}
		// The issue-scoped token may not open pull requests: Gitea files them under the
		// repository scope.
		_, err = w.OpenMergeRequest(ctx, fr, forge.MergeRequest{Key: "k", Title: "Again", SourceBranch: "fix", TargetBranch: "main"})
		if e, ok := forge.AsAPIError(err); !ok || !e.Forbidden() {
			t.Errorf("pull request with write:issue only: %v, want a 403 APIError", err)
		}
	})

	t.Run("read-only token: probe passes, issue refused with the forge's 403", func(t *testing.T) {
		reader := g.CreateUser(t, "reader", "read:repository")
		rw := newWriter(t, g.URL, repo.FullName, reader.Token, loopbackClient())
		if _, err := rw.Check(ctx); err != nil {
			t.Fatalf("Check with read:repository: %v", err)
		}
		_, err := rw.CreateIssue(ctx, fr, forge.Ticket{Key: "k", Title: "not allowed", Author: alice})
		e, ok := forge.AsAPIError(err)
		if !ok || !e.Forbidden() || !strings.Contains(e.Message, "scope") {
			t.Fatalf("CreateIssue with read:repository = %v, want a 403 naming the scope", err)
		}
		if !strings.Contains(err.Error(), strings.TrimPrefix(g.URL, "http://")) || strings.Contains(err.Error(), reader.Token) {
			t.Errorf("error %q should name the host and never the token", err)
		}
		t.Logf("Gitea's answer: %v", err)
	})

	t.Run("wrong token: probe fails with the forge's 401", func(t *testing.T) {
		_, err := newWriter(t, g.URL, repo.FullName, "0123456789abcdef0123456789abcdef01234567", loopbackClient()).Check(ctx)
		e, ok := forge.AsAPIError(err)
		if !ok || !e.Unauthorized() || e.Message == "" {
			t.Fatalf("Check with a wrong token = %v, want a 401 with a message", err)
		}
		t.Logf("Gitea's answer: %v", err)
	})

	t.Run("loopback not allowed: refused before any request", func(t *testing.T) {
		strict := forge.NewAPIClient(activitypub.NewClient(activitypub.ClientConfig{AllowHTTP: true}), forge.APIClientConfig{})
		_, err := newWriter(t, g.URL, repo.FullName, bot.Token, strict).Check(ctx)
		e, ok := forge.AsAPIError(err)
		if !ok || e.StatusCode != 0 || !strings.Contains(err.Error(), "special range") {
			t.Fatalf("Check of a loopback forge without allowedPrivateCIDRs = %v, want a refused address", err)
		}
	})
}

// TestWriterForgeDown: a forge that does not answer gives an APIError without status,
// for the probe and for a write, and nothing panics.
func TestWriterForgeDown(t *testing.T) {
	// A port that was free a moment ago and has no listener: connection refused.
	url := "http://127.0.0.1:1"
	w := newWriter(t, url, "alice/repo", "token", loopbackClient())
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	if _, err := w.Check(ctx); err == nil {
		t.Fatal("Check of a forge that is down succeeded")
	} else if e, ok := forge.AsAPIError(err); !ok || e.StatusCode != 0 || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("Check of a forge that is down = %v, want an APIError naming the host", err)
	}
	if _, err := w.CreateIssue(ctx, forge.Repository{FullName: "alice/repo"}, forge.Ticket{Title: "x"}); err == nil {
		t.Fatal("CreateIssue on a forge that is down succeeded")
	}
}
