// Package urls is the one place that lays out Fedforge's public URLs. The operator writes
// them into status and the server routes them; sharing this package keeps the two in step,
// and actor IDs must never change once peers have stored them.
package urls

import (
	"strconv"
	"strings"
)

// Actor is the URL layout of one local actor.
type Actor struct {
	// ID is the actor URI, <base>/actors/<preferredUsername>.
	ID string
}

// ForActor returns the URL layout of the actor preferredUsername on the server at base
// (scheme://host, no trailing slash).
func ForActor(base, preferredUsername string) Actor {
	return Actor{ID: strings.TrimRight(base, "/") + "/actors/" + preferredUsername}
}

// Inbox is the actor's personal inbox.
func (a Actor) Inbox() string { return a.ID + "/inbox" }

// Outbox is the actor's outbox collection.
func (a Actor) Outbox() string { return a.ID + "/outbox" }

// Followers is the actor's followers collection.
func (a Actor) Followers() string { return a.ID + "/followers" }

// Following is the actor's following collection.
func (a Actor) Following() string { return a.ID + "/following" }

// Forks is a Repository actor's ForgeFed forks collection.
func (a Actor) Forks() string { return a.ID + "/forks" }

// Likes is a Repository actor's likes collection (its stars, in ForgeFed's terms).
func (a Actor) Likes() string { return a.ID + "/likes" }

// RSAKeyID is the draft-cavage keyId Mastodon expects: the actor ID with #main-key.
func (a Actor) RSAKeyID() string { return a.ID + "#main-key" }

// Ed25519KeyID is the FEP-521a Multikey id used for RFC 9421 signatures.
func (a Actor) Ed25519KeyID() string { return a.ID + "#ed25519-key" }

// SharedInbox is the server-wide inbox that peers deliver fan-out to.
func SharedInbox(base string) string { return strings.TrimRight(base, "/") + "/inbox" }

// Handle is the WebFinger handle preferredUsername@host (host may carry a port).
func Handle(preferredUsername, host string) string { return preferredUsername + "@" + host }

// Ticket is the ForgeFed Ticket of the forge's issue number in the repository this actor
// fronts: <actor>/issues/<number>. The URL is derived from the forge's own issue number,
// so that an issue opened from the Fediverse and one opened in the forge have the same
// shape, and the outbound side (a comment written in the forge) can name the Ticket it
// replies to without a lookup.
func (a Actor) Ticket(number int64) string { return a.ID + "/issues/" + itoa(number) }

// MergeRequest is the ForgeFed Ticket (with a patch or branch) of the forge's merge
// request number: <actor>/merge-requests/<number>. GitLab numbers issues and merge
// requests separately, so the two never share a path.
func (a Actor) MergeRequest(number int64) string {
	return a.ID + "/merge-requests/" + itoa(number)
}

// Comment is the Note of the forge comment commentID under the ticket or merge request
// at thread (a URL from Ticket or MergeRequest): <thread>/comments/<id>.
func Comment(thread string, commentID int64) string { return thread + "/comments/" + itoa(commentID) }

// Replies is the replies collection of a Ticket or Note.
func Replies(object string) string { return object + "/replies" }

// ObjectFollowers is the followers collection of a Ticket (its participants).
func ObjectFollowers(object string) string { return object + "/followers" }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
