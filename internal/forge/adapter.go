package forge

import (
	"context"
	"net/http"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
)

// Reader is the inbound half of a forge adapter: it turns one webhook delivery into an
// Event. Every forge Fedforge reads (internal/forge/gitlab, gitea for Gitea and
// Forgejo, github) implements it, and internal/forge/registry maps a source's type to
// its Reader, so that the webhook handler never names a forge.
type Reader interface {
	// Type is the source type this adapter reads (fedv1.SourceGitLab, ...), which is
	// also the forge's name in logs and metrics.
	Type() fedv1.SourceType
	// ParseWebhook verifies a delivery with the forge's own authentication (a token or an
	// HMAC of body under secret, compared in constant time) and parses it. It returns
	// ErrUnauthorized before looking at the payload when the proof is missing or wrong,
	// ErrIgnoredEvent for an authentic delivery Fedforge does not publish, and
	// ErrMalformed for a payload that does not hold what its event type promises.
	// Callers go through registry.ParseWebhook, which also refuses an empty secret and
	// an oversized body before any adapter runs.
	ParseWebhook(h http.Header, body, secret []byte) (*Event, error)
}

// Writer is the outbound half of a forge adapter: issues, comments and merge requests
// asked for from the Fediverse (phase 2). internal/forge/gitea implements it for Gitea and
// Forgejo; GitLab and GitHub follow with their SDKs. A Writer is built per forge access
// (API base URL, a least-privilege token from a Secret, the project path), over the HTTP
// client of NewAPIClient (the outbound network guard); each adapter's writer uses the
// forge's own SDK where one is served.
//
// Idempotency is the caller's: the durable forge-write queue (phase 2) keys every write
// by the IdempotencyKey in its argument, records the Ref the forge assigned under that
// key, and does not call a Writer again for a key it holds. A Writer makes one attempt
// per call and writes the key as a hidden marker with the object (gitea.KeyMarker), so
// that the queue can find an object whose answer it lost (a crash between the forge's
// answer and its own commit). Refs from a Writer therefore always have Created set.
//
// Methods return errors carrying the forge's host and never the token: an *APIError
// with the forge's status and message when the forge answered or could not be reached.
// They take the project by its Repository.FullName, the path every forge's API
// addresses it by.
type Writer interface {
	// Type is the source type this writer writes to.
	Type() fedv1.SourceType
	// CreateIssue opens t as an issue in repo.
	CreateIssue(ctx context.Context, repo Repository, t Ticket) (Ref, error)
	// Comment adds c to issue or merge request number of repo.
	Comment(ctx context.Context, repo Repository, number int64, c Comment) (Ref, error)
	// CloseIssue closes issue number of repo (a ForgeFed Resolve); closing a closed
	// issue succeeds.
	CloseIssue(ctx context.Context, repo Repository, number int64, key IdempotencyKey) error
	// EditComment replaces the body of comment id (a Ref.ID from Comment) of repo with
	// c, attributed again; editing a deleted comment returns a 404 APIError.
	EditComment(ctx context.Context, repo Repository, id int64, c Comment) error
	// DeleteComment deletes comment id of repo; deleting a deleted comment succeeds.
	DeleteComment(ctx context.Context, repo Repository, id int64) error
	// OpenMergeRequest opens mr in repo from a branch already pushed to the same
	// repository. On Gitea and Forgejo this needs the write:repository scope (pull
	// requests are under the repository scope), more than issues and comments need.
	OpenMergeRequest(ctx context.Context, repo Repository, mr MergeRequest) (Ref, error)
}

// RepoInfo is what a forge's API says about the project a Writer fronts, read by a
// writer's Check (the probe behind the ForgeReachable condition).
type RepoInfo struct {
	Repository
	// ForkedFrom is the web page of the parent repository when the forge says this one
	// is a fork, else "".
	ForkedFrom string
	// OriginalURL is where the forge says the repository was migrated (cloned) from
	// (Gitea's original_url), else "": the fork side of issue 14 matches it against the
	// cloneUri of known Repository actors to find the upstream.
	OriginalURL string
}

// IssueReader reads one issue, so that an issue opened in the forge is served as a Ticket
// too. The Gitea writer implements it; callers cache answers (a GET storm on a Ticket
// must not become a storm of forge API calls).
type IssueReader interface {
	// Issue returns issue number of repo; a missing issue is a 404 APIError.
	Issue(ctx context.Context, repo Repository, number int64) (Issue, error)
}

// KeyFinder finds an object a Writer wrote under an idempotency key (the hidden marker),
// so that the forge-write queue recovers an answer it lost: a crash, or a timeout after
// the forge had written. The queue asks only when a write is retried.
type KeyFinder interface {
	// FindByKey looks for the object written under key: a comment of issue number when
	// number > 0, else an issue among the newest of repo. found is false when there is
	// none.
	FindByKey(ctx context.Context, repo Repository, number int64, key IdempotencyKey) (ref Ref, found bool, err error)
}
