package gitea

import (
	"cmp"
	"fmt"

	"github.com/fedforge/fedforge/internal/forge"
	"github.com/fedforge/fedforge/internal/forge/webhook"
)

// The reader of the phase 2 events of Gitea and Forgejo: comments on issues and pull
// requests (issue_comment, which Gitea also sends for pull request comments, with the
// issue's "pull_request" set) and forks. Closing and reopening are in gitea.go with the
// rest of issues and pull_request.

// giteaComment reads an issue_comment delivery (created, edited, deleted). A comment
// whose body carries KeyMarker was written by Fedforge itself (a reply that came from the
// Fediverse): it is ErrIgnoredEvent, so that it never goes back out as a new Note (the
// reply's author already has the original), whatever happens to it later in the forge.
func giteaComment(ev *forge.Event, p *gtPayload) (*forge.Event, error) {
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
	ev.OnMergeRequest = is.PullRequest != nil || p.PullRequest != nil || p.IsPull
	ev.Body, ev.BodyFormat = c.Body, forge.FormatMarkdown
	if c.User.Login != "" || c.User.Username != "" {
		ev.Actor = c.User.person()
	}
	ev.URL = c.HTMLURL
	ev.Identity = forge.CommentIdentity(ev.Repository.FullName, ev.OnMergeRequest, is.Number, c.ID, ev.Action, ev.Time, c.Body)
	return ev, nil
}

// giteaFork reads a fork delivery, which Gitea sends to the hooks of the upstream.
// Gitea 1.27 puts the upstream in "forkee" and the new fork in "repository" (its
// notifier; the struct's comments say the reverse), GitHub the other way round: the one
// that is a fork of the other is the fork, whichever field it came in.
func giteaFork(ev *forge.Event, p *gtPayload) (*forge.Event, error) {
	if p.Forkee == nil || p.Forkee.FullName == "" {
		return nil, fmt.Errorf("%w: fork without forkee", forge.ErrMalformed)
	}
	upstream, fork := p.Repository, *p.Forkee
	if p.Repository.Fork && (p.Repository.Parent == nil || p.Repository.Parent.FullName == p.Forkee.FullName) {
		upstream, fork = *p.Forkee, p.Repository
	}
	if upstream.FullName == fork.FullName {
		return nil, fmt.Errorf("%w: fork of %s into itself", forge.ErrMalformed, upstream.FullName)
	}
	ev.Kind, ev.Action = forge.KindFork, forge.ActionCreated
	ev.Repository, ev.Fork = upstream.subject(), fork.repo()
	ev.URL = cmp.Or(fork.HTMLURL, ev.Fork.WebURL)
	ev.Time = webhook.ParseTime(fork.CreatedAt)
	ev.Identity = forge.ForkIdentity(upstream.FullName, fork.FullName)
	return ev, nil
}
