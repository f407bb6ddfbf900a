// Package forge is the forge-neutral model Fedforge speaks with every forge: the Event
// a forge reports (a release, a tag, a push, a merge request, an issue), the tickets and
// comments Fedforge will write into a forge, and the two small interfaces each forge
// adapter implements, one per direction (Reader: webhooks in; Writer: issues, comments
// and merge requests out). The adapters live in the packages below this one
// (gitlab, gitea for Gitea and Forgejo, github, feed); internal/render turns an Event
// into the activities the server publishes, with ids derived from the forge's own
// identity of the event so that a forge's retry, or a restart of the poller, can never
// post twice.
package forge

import (
	"errors"
	"net/http"
	"time"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
)

// Kind is what happened on the forge, in the terms of EventSource.Events, so that a
// source's event selection applies to every forge alike.
type Kind string

// The event kinds Fedforge publishes; they are the values allowed in spec.sources[].events.
const (
	KindRelease      Kind = "Release"
	KindTag          Kind = "Tag"
	KindPush         Kind = "Push"
	KindMergeRequest Kind = "MergeRequest"
	KindIssue        Kind = "Issue"
	// KindComment is a comment on an issue or merge request (phase 2: it goes out as a
	// Note inReplyTo the Ticket; Event.Number names the thread, Event.CommentID the
	// comment, Event.OnMergeRequest says which kind of thread).
	KindComment Kind = "Comment"
	// KindFork is a fork of the repository made in the forge; Event.Repository is the
	// upstream and Event.Fork the new repository.
	KindFork Kind = "Fork"
	// KindStar is a star given to the repository in the forge; Event.Actor gave it.
	KindStar Kind = "Star"
	// KindActivity is an entry of a forge's activity feed that is none of the above
	// ("created repository"); only feeds produce it, and it is not selectable in
	// spec.sources[].events (feed sources do not consult that list).
	KindActivity Kind = "Activity"
	// KindRepository is a repository created in the forge (Action created), which
	// organization- and system-level hooks deliver; a source with topics also makes one
	// when a repository is first seen carrying one of them (Action ActionTopicSeen).
	KindRepository Kind = "Repository"
)

// ActionTopicSeen is the Action of a KindRepository event made by the webhook handler
// when an event of a repository shows, for the first time, a topic a source selects:
// forges send no webhook when topics change (docs/decisions.md).
const ActionTopicSeen = "topic-seen"

// Actions carried in Event.Action. Each forge spells them differently ("open",
// "opened", "closed" with merged=true); parsers normalise to these.
const (
	ActionPublished = "published"
	ActionCreated   = "created"
	ActionPushed    = "pushed"
	ActionOpened    = "opened"
	ActionMerged    = "merged"
	// ActionClosed and ActionReopened are an issue or merge request closed without
	// merge, or reopened (ForgeFed Resolve and Undo{Resolve} of the Ticket).
	ActionClosed   = "closed"
	ActionReopened = "reopened"
	// ActionEdited and ActionDeleted are a comment (or issue body) edited or deleted.
	ActionEdited  = "edited"
	ActionDeleted = "deleted"
	// ActionLabeled is a merge request whose labels changed (Gitea's "label_updated"):
	// never posted, it is how a pull request gets marked for upstream (issue 14).
	ActionLabeled = "labeled"
)

// Format says how Event.Body is written, so that rendering escapes plain text and
// markdown but sanitises HTML.
type Format string

// Body formats.
const (
	FormatPlain    Format = "text/plain"
	FormatMarkdown Format = "text/markdown"
	FormatHTML     Format = "text/html"
)

// Repository is the forge project an event happened in.
type Repository struct {
	// Name is the short name ("diaspora"), used for the project hashtag.
	Name string
	// FullName is the path with its namespace ("mike/diaspora").
	FullName string
	// WebURL is the project's page on the forge.
	WebURL string
	// CloneURL is the HTTP(S) clone URL, published as ForgeFed cloneUri.
	CloneURL string
	// Private is set when the forge says the repository is private or internal:
	// organization- and system-level hooks report those too, and they are not
	// published (docs/decisions.md).
	Private bool
	// Description is the repository's one-line description.
	Description string
	// APIURL is the repository's address in the forge's API, where its topics are read
	// when a payload was made before they were set.
	APIURL string
	// Created is when the repository was created, part of the identity of its creation.
	Created string
}

// Person is whoever caused the event on the forge. E-mail addresses are deliberately
// not kept: they must not reach the Fediverse.
type Person struct {
	// Name is the display name.
	Name string
	// Username is the forge login.
	Username string
	// URL is the person's profile page on the forge, when the payload gives one.
	URL string
}

// Display returns the best human name for p.
func (p Person) Display() string {
	switch {
	case p.Username != "":
		return p.Username
	default:
		return p.Name
	}
}

// Commit is one commit of a push (or the commit a release points at).
type Commit struct {
	// ID is the full commit hash.
	ID string
	// Message is the full commit message.
	Message string
	// URL is the commit's page on the forge.
	URL string
	// Author wrote the commit.
	Author Person
	// Time is the author (or commit) time the forge reports.
	Time time.Time
}

// Event is one forge event, normalised across forges. Parsers fill what their payload
// carries; Render uses only these fields, so a new forge needs a parser and nothing else.
type Event struct {
	// Forge is the source type that produced the event (GitLab, Gitea, Forgejo, GitHub, Feed).
	Forge fedv1.SourceType
	// Kind is what happened.
	Kind Kind
	// Action refines Kind (published, created, pushed, opened, merged).
	Action string
	// DeliveryID is the forge's id of this delivery (X-Gitlab-Event-UUID,
	// X-Gitea-Delivery, X-GitHub-Delivery), for logs; retries of one event share it.
	DeliveryID string
	// Repository is the project.
	Repository Repository
	// Actor is who did it (pusher, release author, issue author).
	Actor Person
	// Title is the release name, merge request or issue title.
	Title string
	// Version is the tag name of a release or tag.
	Version string
	// URL is the page of the thing itself (release, tag, merge request, issue, compare view).
	URL string
	// Body is the release notes or description.
	Body string
	// BodyFormat says how Body is written.
	BodyFormat Format
	// Ref is the full git ref ("refs/heads/main", "refs/tags/v1").
	Ref string
	// Branch is the short branch name of a push, or the target branch of a merge request.
	Branch string
	// SourceBranch is the head branch of a merge request.
	SourceBranch string
	// Before and After are the ref's old and new commit of a push.
	Before, After string
	// Commits of a push, oldest first, as the forge lists them (forges cap the list).
	Commits []Commit
	// TotalCommits is the number of commits pushed, which may exceed len(Commits).
	TotalCommits int
	// Number is the merge request or issue number shown to people (GitLab iid).
	Number int64
	// MergeCommit is the commit a merged merge request was merged as, when the forge
	// reports it (Gitea's merge_commit_sha); the merged Resolve carries it as its result.
	MergeCommit string
	// Labels of a merge request or issue.
	Labels []string
	// Prerelease marks a release as a pre-release.
	Prerelease bool
	// CommentID is the forge's id of the comment of a KindComment event.
	CommentID int64
	// OnMergeRequest says that the issue-like thread of a KindComment event (or of a
	// close/reopen) is a merge request, not an issue.
	OnMergeRequest bool
	// Fork is the new repository of a KindFork event.
	Fork Repository
	// Headline is the forge's own one-line HTML description of the event, as an
	// activity feed titles its entries ("alice opened issue <a …>o/r#1</a>"). When set,
	// rendering shows it (sanitised) rather than composing a sentence from fields the
	// feed does not carry (number, commits...).
	Headline string
	// Time is when the event happened according to the forge; zero when it did not say.
	Time time.Time
	// Topics are the topics of Repository as the payload lists them at the time of the
	// event (Gitea and Forgejo), for sources that select by topic. They are here and not
	// in Repository so that Repository stays comparable.
	Topics []string
	// HookScope is where the forge's hook was installed when it says so
	// ("repository", "organization", "user", "system"; Gitea's
	// X-Gitea-Hook-Installation-Target-Type); "" when it does not.
	HookScope string
	// Identity is the stable identity of the event on its forge (for example
	// "release|group/project|v1.2"). Activity ids are derived from it, so a forge's
	// retry, a second delivery of the same release, or a replayed feed entry produce
	// the same ids and Publish stays idempotent.
	Identity string
}

// ErrIgnoredEvent is returned for a request that is authentic and well formed but asks
// for nothing Fedforge publishes (an unknown event type, a deleted branch, a closed but
// not merged merge request, an event the source does not select). The HTTP layer
// answers 202 so that the forge does not retry, and counts it.
var ErrIgnoredEvent = errors.New("forge: unknown or unsupported event")

// ErrUnauthorized is returned when the request does not carry valid proof of the
// shared secret (missing or wrong token or signature); the HTTP layer answers 401.
var ErrUnauthorized = errors.New("forge: missing or invalid webhook authentication")

// ErrMalformed is returned for a payload that cannot be parsed or lacks what its event
// type requires; the HTTP layer answers 400.
var ErrMalformed = errors.New("forge: malformed payload")

// ErrTooLarge is returned for a body over MaxBodyBytes; the HTTP layer answers 413.
var ErrTooLarge = errors.New("forge: body too large")

// StatusOf maps an error of this package to the HTTP status a handler answers with,
// so that every caller answers the same way (500 for anything unknown, so forges retry).
func StatusOf(err error) int {
	switch {
	case err == nil:
		return http.StatusAccepted
	case errors.Is(err, ErrIgnoredEvent):
		return http.StatusAccepted
	case errors.Is(err, ErrUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, ErrMalformed):
		return http.StatusBadRequest
	case errors.Is(err, ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusInternalServerError
}
