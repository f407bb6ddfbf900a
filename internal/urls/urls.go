// Package urls is the one place that lays out Fedforge's public URLs. The operator writes
// them into status and the server routes them; sharing this package keeps the two in step,
// and actor IDs must never change once peers have stored them.
package urls

import "strings"

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

// RSAKeyID is the draft-cavage keyId Mastodon expects: the actor ID with #main-key.
func (a Actor) RSAKeyID() string { return a.ID + "#main-key" }

// Ed25519KeyID is the FEP-521a Multikey id used for RFC 9421 signatures.
func (a Actor) Ed25519KeyID() string { return a.ID + "#ed25519-key" }

// SharedInbox is the server-wide inbox that peers deliver fan-out to.
func SharedInbox(base string) string { return strings.TrimRight(base, "/") + "/inbox" }

// Handle is the WebFinger handle preferredUsername@host (host may carry a port).
func Handle(preferredUsername, host string) string { return preferredUsername + "@" + host }
