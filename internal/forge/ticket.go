package forge

import "time"

// The neutral model of what Fedforge writes into a forge (phase 2): an issue opened
// from a ForgeFed Offer{Ticket}, a comment from a reply, a merge request from an
// Offer{Patch}/branch. Like Event on the way in, these carry only what every forge can
// take, so that the inbox handlers never speak a forge's API dialect. The writers
// that take them implement Writer (internal/forge/gitea for Gitea and Forgejo).

// IdempotencyKey names one write across every retry of it: the id of the ActivityPub
// activity that asked for it (an Offer, a Create of a reply). Remote servers redeliver
// and Fedforge's own queue retries after a crash, so the forge-write queue (phase 2)
// keeps a row per key with the Ref the forge assigned, and returns it instead of filing
// a second issue or comment; writers put the key in a hidden marker with the object so
// that an answer lost in a crash can be recovered (see Writer).
type IdempotencyKey string

// RemoteAuthor is the Fediverse account a ticket or comment comes from. Fedforge writes
// into a forge with its own token, so the forge names the token's user as the author;
// the remote author is credited in the body (and, where a forge has one, an
// "on behalf of" field), never by impersonating a forge user.
type RemoteAuthor struct {
	// Handle is the account's address ("@alice@social.example"), shown to forge users.
	Handle string
	// URL is the actor's id or profile page, linked from the forge object.
	URL string
	// Name is the display name, when the actor has one.
	Name string
}

// Ticket is an issue to open on a forge.
type Ticket struct {
	// Key makes opening it idempotent.
	Key IdempotencyKey
	// Title is the issue title (ForgeFed Ticket name / summary).
	Title string
	// Body is the description, written in Format.
	Body string
	// Format says how Body is written; writers convert to what the forge renders and
	// sanitise HTML, as rendering does on the way out.
	Format Format
	// Author is who filed it on the Fediverse.
	Author RemoteAuthor
	// ObjectID is the ActivityPub id of the Ticket (or Offer) it came from, linked from
	// the issue so that forge users can find the thread.
	ObjectID string
	// Labels to set where the token may set them; writers drop unknown ones rather than
	// fail, since labels are per-project.
	Labels []string
}

// Comment is a comment on an issue or merge request.
type Comment struct {
	// Key makes posting it idempotent.
	Key IdempotencyKey
	// Body is the comment, written in Format.
	Body string
	// Format says how Body is written.
	Format Format
	// Author is who wrote it on the Fediverse.
	Author RemoteAuthor
	// ObjectID is the ActivityPub id of the Note it came from.
	ObjectID string
}

// MergeRequest is a merge (pull) request to open, from a branch already pushed to the
// forge. Pushing the branch is not a forge API call: it is plain git over HTTPS, the
// same for every forge, so it is not part of Writer.
type MergeRequest struct {
	// Key makes opening it idempotent.
	Key IdempotencyKey
	// Title and Body describe the change; Body is written in Format.
	Title, Body string
	// Format says how Body is written.
	Format Format
	// Author is who offered the change on the Fediverse.
	Author RemoteAuthor
	// SourceBranch holds the change; TargetBranch is where it should go.
	SourceBranch, TargetBranch string
	// ObjectID is the ActivityPub id of the Offer it came from.
	ObjectID string
}

// Ref is what a forge assigned to an object Fedforge wrote.
type Ref struct {
	// Number is the issue or merge request number shown to people (GitLab iid).
	Number int64
	// ID is the forge's id of a comment (Gitea's comment id), 0 for an issue or merge
	// request: EditComment and DeleteComment take it, and the outbound side matches the
	// forge's comment webhooks against it to recognise a comment Fedforge wrote.
	ID int64
	// URL is the object's page on the forge (for a comment, its anchor).
	URL string
	// Created is false when the key matched an object written before, so the caller
	// does not announce it twice.
	Created bool
}

// Issue is an issue as the forge reports it, read to serve its Ticket (every issue of a
// fronted repository is a Ticket, whether it was opened from the Fediverse or in the
// forge).
type Issue struct {
	// Number is the issue number.
	Number int64
	// Title and Body are as written in the forge (Body in the forge's Markdown).
	Title, Body string
	// URL is the issue's page on the forge.
	URL string
	// Closed says the issue is closed (a resolved Ticket).
	Closed bool
	// AuthorLogin is the forge user who opened it (Fedforge's token user for offered
	// tickets); AuthorURL is that user's profile page.
	AuthorLogin, AuthorURL string
	// Created, Updated and ClosedAt are the forge's times (ClosedAt zero when open).
	Created, Updated, ClosedAt time.Time
	// PullRequest says the number is a pull request's (Gitea numbers both in one
	// sequence); it is served as a merge request, not as a Ticket.
	PullRequest bool
}
