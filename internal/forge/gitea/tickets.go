package gitea

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	sdk "code.gitea.io/sdk/gitea"

	"github.com/fedforge/fedforge/internal/forge"
)

// The Writer's ticket calls beyond opening and commenting: editing and deleting a
// comment, reading an issue (a Ticket served from the forge) and finding an object by its
// idempotency key (the queue's recovery of a lost answer).

// EditComment replaces comment id's body with c, attributed as Comment writes it.
func (w *Writer) EditComment(ctx context.Context, repo forge.Repository, id int64, cm forge.Comment) error {
	c, owner, name, err := w.repoClient(ctx, repo)
	if err != nil {
		return err
	}
	body := Attributed(cm.Body, cm.Format, cm.Author, cm.ObjectID, cm.Key, "Written")
	if _, resp, err := c.EditIssueComment(owner, name, id, sdk.EditIssueCommentOption{Body: body}); err != nil {
		return w.fail(fmt.Sprintf("editing comment %d of %s", id, repo.FullName), resp, err)
	}
	return nil
}

// DeleteComment deletes comment id; a comment already gone (404) counts as deleted, so a
// retried delete succeeds.
func (w *Writer) DeleteComment(ctx context.Context, repo forge.Repository, id int64) error {
	c, owner, name, err := w.repoClient(ctx, repo)
	if err != nil {
		return err
	}
	resp, err := c.DeleteIssueComment(owner, name, id)
	if err != nil && (resp == nil || resp.Response == nil || resp.StatusCode != http.StatusNotFound) {
		return w.fail(fmt.Sprintf("deleting comment %d of %s", id, repo.FullName), resp, err)
	}
	return nil
}

// Issue reads issue number (one GET).
func (w *Writer) Issue(ctx context.Context, repo forge.Repository, number int64) (forge.Issue, error) {
	c, owner, name, err := w.repoClient(ctx, repo)
	if err != nil {
		return forge.Issue{}, err
	}
	is, resp, err := c.GetIssue(owner, name, number)
	if err != nil {
		return forge.Issue{}, w.fail(fmt.Sprintf("reading #%d of %s", number, repo.FullName), resp, err)
	}
	out := forge.Issue{Number: is.Index, Title: is.Title, Body: is.Body, URL: is.HTMLURL,
		Closed: is.State == sdk.StateClosed, Created: is.Created, Updated: is.Updated, PullRequest: is.PullRequest != nil}
	if is.Closed != nil {
		out.ClosedAt = *is.Closed
	}
	if is.Poster != nil {
		out.AuthorLogin, out.AuthorURL = is.Poster.UserName, is.Poster.HTMLURL
	}
	return out, nil
}

// recoveryWindow is how many of the newest issues (or comments of an issue) FindByKey
// reads: a lost answer is found among what was written moments ago.
const recoveryWindow = 50

// FindByKey looks for the hidden key marker among the newest issues of repo (number 0) or
// the comments of issue number. One API call.
func (w *Writer) FindByKey(ctx context.Context, repo forge.Repository, number int64, key forge.IdempotencyKey) (forge.Ref, bool, error) {
	c, owner, name, err := w.repoClient(ctx, repo)
	if err != nil {
		return forge.Ref{}, false, err
	}
	mark := marker(key)
	if number > 0 {
		// Gitea lists comments oldest first; the newest are on the last page, and one
		// issue seldom has more than the window.
		cs, resp, err := c.ListIssueComments(owner, name, number, sdk.ListIssueCommentOptions{ListOptions: sdk.ListOptions{PageSize: recoveryWindow}})
		if err != nil {
			return forge.Ref{}, false, w.fail(fmt.Sprintf("listing comments of #%d of %s", number, repo.FullName), resp, err)
		}
		for _, cm := range cs {
			if strings.Contains(cm.Body, mark) {
				return forge.Ref{Number: number, ID: cm.ID, URL: cm.HTMLURL}, true, nil
			}
		}
		return forge.Ref{}, false, nil
	}
	issues, resp, err := c.ListRepoIssues(owner, name, sdk.ListIssueOption{ListOptions: sdk.ListOptions{PageSize: recoveryWindow},
		State: sdk.StateAll, Type: sdk.IssueTypeIssue})
	if err != nil {
		return forge.Ref{}, false, w.fail("listing issues of "+repo.FullName, resp, err)
	}
	for _, is := range issues {
		if strings.Contains(is.Body, mark) {
			return forge.Ref{Number: is.Index, URL: is.HTMLURL}, true, nil
		}
	}
	return forge.Ref{}, false, nil
}

// marker is the exact hidden line Attributed writes for key.
func marker(key forge.IdempotencyKey) string {
	return KeyMarker + strings.ReplaceAll(string(key), "--", "%2D%2D") + " -->"
}
