package gitea_test

import (
	"strings"
	"testing"

	sdk "code.gitea.io/sdk/gitea"

	"github.com/fedforge/fedforge/internal/forge"
	"github.com/fedforge/fedforge/internal/forge/giteatest"
)

// TestWriterTicketCallsAgainstRealGitea: with the least-privilege token, a comment is
// edited (still attributed) and deleted (twice: a retried delete succeeds), an issue is
// read back as the forge reports it, and an issue and a comment are found again by their
// idempotency key, as the queue does after losing an answer.
func TestWriterTicketCallsAgainstRealGitea(t *testing.T) {
	g := giteatest.Start(t)
	ctx := t.Context()
	repo, _, err := g.Client.CreateRepo(sdk.CreateRepoOption{Name: "tickets", AutoInit: true, DefaultBranch: "main"})
	if err != nil {
		t.Fatalf("create repository: %v", err)
	}
	fr := forge.Repository{Name: repo.Name, FullName: repo.FullName}
	bot := g.CreateUser(t, "fedforge", "read:repository", "write:issue")
	w := newWriter(t, g.URL, repo.FullName, bot.Token, loopbackClient())
	alice := forge.RemoteAuthor{Handle: "@alice@social.example", URL: "https://social.example/users/alice"}
	const issueKey = forge.IdempotencyKey("https://social.example/offers/1--x")

	ref, err := w.CreateIssue(ctx, fr, forge.Ticket{Key: issueKey, Title: "Found by key", Body: "body", Format: forge.FormatMarkdown, Author: alice})
	if err != nil {
		t.Fatalf("CreateIssue: %v", err)
	}
	cref, err := w.Comment(ctx, fr, ref.Number, forge.Comment{Key: "https://social.example/creates/1", Body: "first", Format: forge.FormatMarkdown, Author: alice})
	if err != nil || cref.ID == 0 {
		t.Fatalf("Comment = %+v, %v; want the forge's comment id", cref, err)
	}

	t.Run("find by key", func(t *testing.T) {
		got, found, err := w.FindByKey(ctx, fr, 0, issueKey)
		if err != nil || !found || got.Number != ref.Number {
			t.Errorf("FindByKey(issue) = %+v, %v, %v; want #%d", got, found, err, ref.Number)
		}
		got, found, err = w.FindByKey(ctx, fr, ref.Number, "https://social.example/creates/1")
		if err != nil || !found || got.ID != cref.ID {
			t.Errorf("FindByKey(comment) = %+v, %v, %v; want comment %d", got, found, err, cref.ID)
		}
		if _, found, err := w.FindByKey(ctx, fr, 0, "https://social.example/offers/never"); err != nil || found {
			t.Errorf("FindByKey(unknown) = %v, %v; want not found", found, err)
		}
	})

	t.Run("issue", func(t *testing.T) {
		is, err := w.Issue(ctx, fr, ref.Number)
		if err != nil || is.Title != "Found by key" || is.Closed || is.AuthorLogin != "fedforge" || is.URL != ref.URL ||
			!strings.Contains(is.Body, "(<https://social.example/users/alice>)") || is.Created.IsZero() {
			t.Errorf("Issue = %+v, %v", is, err)
		}
		if _, err := w.Issue(ctx, fr, 999); err == nil {
			t.Error("Issue(999) succeeded")
		} else if e, ok := forge.AsAPIError(err); !ok || e.StatusCode != 404 {
			t.Errorf("Issue(999) = %v, want a 404 APIError", err)
		}
	})

	t.Run("edit and delete", func(t *testing.T) {
		if err := w.EditComment(ctx, fr, cref.ID, forge.Comment{Key: "https://social.example/updates/1", Body: "edited", Format: forge.FormatMarkdown, Author: alice}); err != nil {
			t.Fatalf("EditComment: %v", err)
		}
		c, _, err := g.Client.GetIssueComment(repo.Owner.UserName, repo.Name, cref.ID)
		if err != nil || !strings.HasPrefix(c.Body, "edited") || !strings.Contains(c.Body, "(<https://social.example/users/alice>)") {
			t.Errorf("edited comment = %+v, %v", c, err)
		}
		for i := range 2 {
			if err := w.DeleteComment(ctx, fr, cref.ID); err != nil {
				t.Fatalf("DeleteComment #%d: %v", i+1, err)
			}
		}
		if _, resp, err := g.Client.GetIssueComment(repo.Owner.UserName, repo.Name, cref.ID); err == nil || resp.StatusCode != 404 {
			t.Errorf("deleted comment still readable: %v", err)
		}
	})
}
