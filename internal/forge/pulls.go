package forge

import "context"

// PullBase is what mirroring a branch into a forge repository needs from the forge: where
// git pushes to and as whom, and the branch a pull request goes into by default.
type PullBase struct {
	// CloneURL is the repository's http(s) clone URL.
	CloneURL string
	// DefaultBranch is the repository's default branch.
	DefaultBranch string
	// Username is the user name git sends with the token as its password.
	Username string
}

// PullState is a pull request as the forge reports it.
type PullState struct {
	// Open is false once the pull request was closed or merged.
	Open bool
	// Merged says it was merged.
	Merged bool
}

// PullOpener opens pull requests from federated branches (issue 14, upstream side): the
// branch is pushed with git (internal/gitsync), the pull request opened through the
// forge's API. Opening is made idempotent the same way as issues: the key is hidden in
// the body (KeyFinder's marker) and FindPullByKey finds a pull request whose answer was
// lost. On Gitea and Forgejo the token needs write:repository (pushing the branch and
// opening the pull request are repository-scope routes).
type PullOpener interface {
	// PullBase reads the repository's clone URL and default branch.
	PullBase(ctx context.Context, repo Repository) (PullBase, error)
	// OpenMergeRequest opens mr in repo from a branch already pushed to it.
	OpenMergeRequest(ctx context.Context, repo Repository, mr MergeRequest) (Ref, error)
	// FindPullByKey looks for the pull request opened under key among the newest of repo.
	FindPullByKey(ctx context.Context, repo Repository, key IdempotencyKey) (ref Ref, found bool, err error)
	// PullState reads whether pull request number is still open.
	PullState(ctx context.Context, repo Repository, number int64) (PullState, error)
}
