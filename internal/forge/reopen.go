package forge

import "context"

// PullReopener reopens a pull request (issue 14, upstream side): the person who offered a
// federated merge request reopened their own pull request on the fork, and the pull
// request Fedforge opened from the federated branch is reopened with it. A forge reopens
// only a pull request whose head branch still exists; ReopenPull says so with an
// *APIError of status 404 (nothing to reopen from) or 409 (merged meanwhile), which the
// forge-write queue does not retry. Reopening an open pull request succeeds.
type PullReopener interface {
	ReopenPull(ctx context.Context, repo Repository, number int64) error
}
