package forge

import (
	"context"
	"time"
)

// PullRequest is a pull (merge) request as the forge reports it, read to serve its
// merge-request Ticket (<actor>/merge-requests/<n>): every pull request of a fronted
// repository is one, whether Fedforge opened it from an Offer or a person opened it in
// the forge.
type PullRequest struct {
	// Number is the pull request number.
	Number int64
	// Title and Body are as written in the forge (Body in the forge's Markdown).
	Title, Body string
	// URL is the pull request's page on the forge; DiffURL its unified diff.
	URL, DiffURL string
	// Closed says it is closed or merged (a resolved Ticket); Merged that it was merged,
	// as MergeCommit (when the forge reports the commit).
	Closed, Merged bool
	MergeCommit    string
	// AuthorLogin is the forge user who opened it (Fedforge's token user for federated
	// pull requests); AuthorURL is that user's profile page.
	AuthorLogin, AuthorURL string
	// Head is the branch that holds the change, Base the branch it goes into.
	Head, Base PullBranch
	// Created and Updated are the forge's times; ClosedAt and MergedAt are zero until then.
	Created, Updated, ClosedAt, MergedAt time.Time
}

// PullBranch is one side of a pull request.
type PullBranch struct {
	// Name is the branch name (without refs/heads/).
	Name string
	// RepoFullName is the repository that holds it ("owner/name"), RepoURL its page; both
	// are empty when the forge no longer knows the repository (a deleted fork).
	RepoFullName, RepoURL string
}

// PullReader reads pull requests. On Gitea and Forgejo it needs read:repository.
type PullReader interface {
	// PullRequest reads pull request number of repo; a number that is an issue, or none,
	// is an APIError with StatusCode 404.
	PullRequest(ctx context.Context, repo Repository, number int64) (PullRequest, error)
}
