package github

import (
	"cmp"
	"fmt"

	"github.com/fedforge/fedforge/internal/forge"
	"github.com/fedforge/fedforge/internal/forge/webhook"
)

// The phase 2 events of GitHub: comments on issues and pull requests (issue_comment;
// a pull request's conversation comments arrive as issue_comment with issue.pull_request
// set), forks and stars. Closing and reopening are read with the rest of issues and
// pull_request in github.go.

// githubComment reads an issue_comment delivery (created, edited, deleted). A body
// carrying Fedforge's marker is ErrIgnoredEvent (forge.WrittenByFedforge).
func githubComment(ev *forge.Event, p *ghPayload) (*forge.Event, error) {
	is, c := p.Issue, p.Comment
	if is == nil || is.Number == 0 || c == nil || c.ID == 0 {
		return nil, fmt.Errorf("%w: issue_comment without issue number or comment id", forge.ErrMalformed)
	}
	switch p.Action {
	case "created":
		ev.Action, ev.Time = forge.ActionCreated, webhook.ParseTime(c.CreatedAt)
	case "edited":
		ev.Action, ev.Time = forge.ActionEdited, webhook.ParseTime(c.UpdatedAt)
	case "deleted":
		ev.Action = forge.ActionDeleted
	default:
		return nil, fmt.Errorf("%w: issue_comment %s", forge.ErrIgnoredEvent, p.Action)
	}
	if forge.WrittenByFedforge(c.Body) {
		return nil, fmt.Errorf("%w: comment %d written by Fedforge", forge.ErrIgnoredEvent, c.ID)
	}
	ev.Kind, ev.Number, ev.CommentID, ev.Title = forge.KindComment, is.Number, c.ID, is.Title
	ev.OnMergeRequest = is.PullRequest != nil
	ev.Body, ev.BodyFormat, ev.URL = c.Body, forge.FormatMarkdown, c.HTMLURL
	if c.User.Login != "" {
		ev.Actor = c.User.person()
	}
	ev.Identity = forge.CommentIdentity(ev.Repository.FullName, ev.OnMergeRequest, is.Number, c.ID, ev.Action, ev.Time, c.Body)
	return ev, nil
}

// githubFork reads a fork delivery: GitHub sends it to the upstream, with the new fork
// as "forkee".
func githubFork(ev *forge.Event, p *ghPayload) (*forge.Event, error) {
	f := p.Forkee
	if f == nil || f.FullName == "" || f.FullName == ev.Repository.FullName {
		return nil, fmt.Errorf("%w: fork without a forkee", forge.ErrMalformed)
	}
	ev.Kind, ev.Action, ev.Fork = forge.KindFork, forge.ActionCreated, f.repo()
	ev.URL = cmp.Or(f.HTMLURL, ev.Fork.WebURL)
	if s, ok := f.CreatedAt.(string); ok {
		ev.Time = webhook.ParseTime(s)
	}
	ev.Identity = forge.ForkIdentity(ev.Repository.FullName, f.FullName)
	return ev, nil
}

// githubStar reads a star delivery (created, deleted); stars are counted, never posted.
func githubStar(ev *forge.Event, p *ghPayload) (*forge.Event, error) {
	switch p.Action {
	case "created":
		ev.Action = forge.ActionCreated
	case "deleted":
		ev.Action = forge.ActionDeleted
	default:
		return nil, fmt.Errorf("%w: star %s", forge.ErrIgnoredEvent, p.Action)
	}
	if ev.Actor.Username == "" {
		return nil, fmt.Errorf("%w: star without sender", forge.ErrMalformed)
	}
	ev.Kind, ev.Time, ev.URL = forge.KindStar, webhook.ParseTime(p.StarredAt), ev.Repository.WebURL
	ev.Identity = forge.StarIdentity(ev.Repository.FullName, ev.Actor.Username, ev.Action)
	return ev, nil
}
