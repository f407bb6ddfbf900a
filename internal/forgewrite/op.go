// Package forgewrite is the durable queue of writes into forges (phase 2): an issue
// opened from an Offer{Ticket}, a comment from a reply, its edit and its deletion. The
// inbox queues a write in the store (store.Tickets) keyed by the id of the activity that
// asked for it and answers the peer at once; the Executor writes it into the forge
// through the actor's forge.Writer, with retries and backoff, leases so that two
// replicas never run one write, and the forge's answer recorded before any follow-up, so
// that a key is written once. A forge that is down delays a write; it never loses it.
package forgewrite

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/fedforge/fedforge/internal/forge"
	"github.com/fedforge/fedforge/internal/store"
)

// Kind is what a queued write does.
type Kind string

// The kinds of writes.
const (
	// KindIssue opens Op.Ticket as an issue.
	KindIssue Kind = "issue"
	// KindComment adds Op.Comment to issue Op.Number.
	KindComment Kind = "comment"
	// KindEditComment replaces comment Op.CommentID with Op.Comment.
	KindEditComment Kind = "edit-comment"
	// KindDeleteComment deletes comment Op.CommentID.
	KindDeleteComment Kind = "delete-comment"
	// KindClose closes issue or pull request Op.Number (Gitea numbers both in one
	// sequence and closes either through the issues API, with write:issue): a pull
	// request offered upstream that the upstream merged (issue 14).
	KindClose Kind = "close"
	// KindReopen reopens pull request Op.Number (forge.PullReopener): the actor that
	// offered a federated merge request reopened its own pull request (issue 14).
	KindReopen Kind = "reopen"
	// KindMergeRequest mirrors Op.MergeRequest's branch into a federated branch and opens
	// a pull request from it (issue 14, upstream side); Config.Git runs it.
	KindMergeRequest Kind = "merge-request"
	// KindMergeRequestUpdate mirrors the branch of the federated merge request
	// Op.Origin.TicketID again after a ForgeFed Push; Config.Git runs it.
	KindMergeRequestUpdate Kind = "merge-request-update"
)

// MergeRequest is a merge request offered from the Fediverse: the pull request to open
// and the remote branch it comes from.
type MergeRequest struct {
	// Title, Body, Format, Author and ObjectID are the pull request's, as for an issue.
	Title    string             `json:"title"`
	Body     string             `json:"body,omitempty"`
	Format   forge.Format       `json:"format,omitempty"`
	Author   forge.RemoteAuthor `json:"author"`
	ObjectID string             `json:"objectId,omitempty"`
	// CloneURL is the origin repository's clone URL (from its actor document).
	CloneURL string `json:"cloneUrl"`
	// OriginRef is the origin branch's ref (refs/heads/<Branch>).
	OriginRef string `json:"originRef"`
	// Branch is the origin branch's name; Host and User name the federated branch
	// (federated/<Host>/<User>/<Branch>).
	Branch string `json:"branch"`
	Host   string `json:"host"`
	User   string `json:"user"`
	// TargetBranch is the pull request's base; "" is the repository's default branch.
	TargetBranch string `json:"targetBranch,omitempty"`
}

// Op is one write, as it is kept in the queue row's payload: what to write and where the
// answer goes once it is written (Origin).
type Op struct {
	Kind Kind `json:"kind"`
	// Number is the issue a comment goes under.
	Number int64 `json:"number,omitempty"`
	// CommentID is the comment an edit or deletion changes; 0 until known (the
	// comment's own write may still be queued), filled by Config.Prepare.
	CommentID int64 `json:"commentId,omitempty"`
	// NoteID is the remote Note a comment write is about.
	NoteID string `json:"noteId,omitempty"`
	// Ticket is the issue to open.
	Ticket *forge.Ticket `json:"ticket,omitempty"`
	// Comment is the comment to write.
	Comment *forge.Comment `json:"comment,omitempty"`
	// MergeRequest is the merge request to open (KindMergeRequest).
	MergeRequest *MergeRequest `json:"mergeRequest,omitempty"`
	// Origin says who asked, so that the answer (Accept, Reject) reaches them.
	Origin Origin `json:"origin"`
}

// Origin is the activity that asked for a write and where its answer goes.
type Origin struct {
	// ActivityID is the Offer, Create, Update or Delete (also the row's key).
	ActivityID string `json:"activity"`
	// ActorID is the remote actor that sent it.
	ActorID string `json:"actor"`
	// Inbox is the remote actor's inbox, for the answer.
	Inbox string `json:"inbox,omitempty"`
	// ObjectID is the id of the offered Ticket or of the Note.
	ObjectID string `json:"object,omitempty"`
	// TicketID is the local Ticket a comment is under.
	TicketID string `json:"ticket,omitempty"`
	// Mention says an issue was asked for by a Note mentioning the actor (a Mastodon
	// user filing a bug): it is answered with a reply Note, not an Accept.
	Mention bool `json:"mention,omitempty"`
}

// Row builds the queue row of op for the local actor actorID, keyed by the activity id.
func Row(actorID string, op Op) (store.ForgeWrite, error) {
	if op.Origin.ActivityID == "" {
		return store.ForgeWrite{}, errors.New("forgewrite: a write needs the id of the activity that asked for it")
	}
	switch op.Kind {
	case KindIssue:
		if op.Ticket == nil {
			return store.ForgeWrite{}, errors.New("forgewrite: an issue write without a ticket")
		}
	case KindComment, KindEditComment:
		if op.Comment == nil {
			return store.ForgeWrite{}, fmt.Errorf("forgewrite: a %s write without a comment", op.Kind)
		}
	case KindDeleteComment:
	case KindClose, KindReopen:
		if op.Number <= 0 {
			return store.ForgeWrite{}, fmt.Errorf("forgewrite: a %s write without a number", op.Kind)
		}
	case KindMergeRequest:
		if op.MergeRequest == nil {
			return store.ForgeWrite{}, errors.New("forgewrite: a merge-request write without a merge request")
		}
	case KindMergeRequestUpdate:
		if op.Origin.TicketID == "" {
			return store.ForgeWrite{}, errors.New("forgewrite: a merge-request update without its merge request")
		}
	default:
		return store.ForgeWrite{}, fmt.Errorf("forgewrite: unknown kind %q", op.Kind)
	}
	b, err := json.Marshal(op)
	if err != nil {
		return store.ForgeWrite{}, fmt.Errorf("forgewrite: encoding %s: %w", op.Origin.ActivityID, err)
	}
	return store.ForgeWrite{Key: op.Origin.ActivityID, ActorID: actorID, Kind: string(op.Kind), Payload: b}, nil
}

// Decode reads the Op of a queue row.
func Decode(w store.ForgeWrite) (Op, error) {
	var op Op
	if err := json.Unmarshal(w.Payload, &op); err != nil {
		return op, fmt.Errorf("forgewrite: row %s: %w", w.Key, err)
	}
	if string(op.Kind) != w.Kind {
		return op, fmt.Errorf("forgewrite: row %s is a %s with a %s payload", w.Key, w.Kind, op.Kind)
	}
	return op, nil
}

// ErrPermanent marks an error that no retry will change (the actor takes no tickets any
// more, the forge refused the write with a 4xx): the row is given up at once.
var ErrPermanent = errors.New("permanent")

// Permanent wraps err as permanent.
func Permanent(err error) error { return fmt.Errorf("%w: %w", ErrPermanent, err) }

// permanent says whether err will not heal: ErrPermanent, or a forge 4xx other than
// those a person or time fixes (401 and 403: the token; 408, 409, 425, 429: timing).
func permanent(err error) bool {
	if errors.Is(err, ErrPermanent) {
		return true
	}
	e, ok := forge.AsAPIError(err)
	if !ok || e.StatusCode < 400 || e.StatusCode >= 500 {
		return false
	}
	switch e.StatusCode {
	case 401, 403, 408, 409, 425, 429:
		return false
	}
	return true
}
