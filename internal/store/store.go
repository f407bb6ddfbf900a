// Package store is the persistent memory of `fedforge server` and of the delivery
// executors: the outbox, received activities, the remote actor and key cache, the
// durable delivery queue and feed-source dedupe state. It hides two SQL engines behind
// one interface so that a single replica can run on an embedded SQLite file and several
// replicas can share PostgreSQL, with the same behaviour proven by one test suite.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// ErrNotFound is returned when an identifier has no row, so that HTTP handlers can
// answer 404 and caches can fetch, without parsing driver errors.
var ErrNotFound = errors.New("store: not found")

// ErrLeaseLost is returned when a worker reports on a delivery it no longer holds
// (its lease expired and another worker took the row), so the stale report cannot
// overwrite the newer worker's state.
var ErrLeaseLost = errors.New("store: delivery lease lost")

// ErrBadCursor is returned for a pagination cursor that this store did not issue, so
// the HTTP layer can answer 400 instead of 500.
var ErrBadCursor = errors.New("store: malformed cursor")

// Visibility is the addressing class of a published activity; it decides who may
// dereference it and whether it appears in the public outbox collection.
type Visibility string

// The visibilities the server emits. They mirror Mastodon's so that peers render
// our posts the way their authors meant.
const (
	// Public is addressed to as:Public in `to`: shown in the outbox and public timelines.
	Public Visibility = "public"
	// Unlisted is addressed to as:Public in `cc`: shown in the outbox, not in timelines.
	Unlisted Visibility = "unlisted"
	// Followers is addressed to the followers collection only: served to followers.
	Followers Visibility = "followers"
	// Direct is addressed to named actors only (Accept, Reject, direct notes).
	Direct Visibility = "direct"
)

// Valid reports whether v is one of the known visibilities, so bad input fails early
// rather than at a CHECK constraint.
func (v Visibility) Valid() bool {
	switch v {
	case Public, Unlisted, Followers, Direct:
		return true
	}
	return false
}

// Activity is one activity a local actor published. Every published activity must
// dereference at its ID, and the outbox collection lists them newest first.
type Activity struct {
	// ID is the activity's absolute IRI; it is unique across the store.
	ID string
	// ActorID is the local actor that published it; the outbox is keyed by it.
	ActorID string
	// Type is the AS2 type (Create, Announce, Accept, Push, ...).
	Type string
	// ObjectID is the IRI of the activity's object, empty when it has none.
	ObjectID string
	// Visibility decides who may read it and whether the outbox lists it.
	Visibility Visibility
	// Published orders the outbox; stored in UTC with microsecond precision.
	Published time.Time
	// Raw is the exact JSON document served at ID.
	Raw json.RawMessage
	// Object, when set, is the embedded object, stored so that it dereferences at its
	// own ID (a Note inside a Create must be fetchable by Mastodon).
	Object *Object
}

// Object is a published object (Note, Ticket, ...) that must dereference at its ID.
type Object struct {
	// ID is the object's absolute IRI.
	ID string
	// ActorID is the attributed local actor.
	ActorID string
	// Type is the AS2 or ForgeFed type.
	Type string
	// Visibility decides who may read it.
	Visibility Visibility
	// Published is when it was first published (UTC).
	Published time.Time
	// Updated is when it was last replaced by an Update (UTC); equal to Published at first.
	Updated time.Time
	// Raw is the exact JSON document served at ID.
	Raw json.RawMessage
}

// OutboxQuery selects one page of an actor's outbox. Pages are keyset-based so that
// page 10,000 costs what page 1 costs.
type OutboxQuery struct {
	// ActorID is the local actor whose outbox is read.
	ActorID string
	// Visibilities restricts the page; empty means Public and Unlisted, what an
	// anonymous reader may see.
	Visibilities []Visibility
	// Cursor is the Next value of a previous page; empty starts at the newest item.
	Cursor string
	// Limit is the page size; values outside 1..500 are clamped (default 20).
	Limit int
}

// OutboxPage is one page of an outbox, newest first.
type OutboxPage struct {
	// Items are the activities on this page.
	Items []Activity
	// Next is the opaque cursor of the following (older) page, empty on the last page.
	Next string
}

// Received is one activity delivered to our inboxes, kept raw so it can be replayed
// or audited, and deduplicated by ID so that peers' replays are ignored.
type Received struct {
	// ID is the activity's IRI as the peer named it.
	ID string
	// ActorID is the remote actor that sent it (the signer's key owner).
	ActorID string
	// Type is the AS2 type.
	Type string
	// ReceivedAt is when our inbox accepted it (UTC).
	ReceivedAt time.Time
	// Raw is the request body as received.
	Raw json.RawMessage
}

// ReceivedPage is one keyset page of received activities, newest first.
type ReceivedPage struct {
	// Items are the received activities on this page.
	Items []Received
	// Next is the opaque cursor of the following (older) page, empty on the last page.
	Next string
}

// PublicKey is one verification key of a remote actor, cached so that signature
// checks do not fetch the actor on every request.
type PublicKey struct {
	// ID is the key's IRI (keyId in draft-cavage, keyid in RFC 9421).
	ID string
	// OwnerID is the actor that owns the key.
	OwnerID string
	// PEM is the SPKI public key in PEM form (or a Multikey re-encoded as PEM).
	PEM string
}

// RemoteActor is the cached document of a remote actor: where to deliver and which
// keys it signs with. Negative entries remember failed lookups so that a hostile or
// broken peer cannot make us refetch on every request.
type RemoteActor struct {
	// ID is the actor's IRI.
	ID string
	// Inbox is the actor's personal inbox.
	Inbox string
	// SharedInbox is endpoints.sharedInbox, empty when the peer has none.
	SharedInbox string
	// Keys are the actor's public keys; replaced as a whole on every upsert.
	Keys []PublicKey
	// Raw is the fetched actor document.
	Raw json.RawMessage
	// FetchedAt is when the document (or the failure) was observed (UTC).
	FetchedAt time.Time
	// ExpiresAt is when the entry must be refetched (UTC).
	ExpiresAt time.Time
	// Negative marks a failed lookup; only ID, Error, FetchedAt and ExpiresAt matter.
	Negative bool
	// Error explains a negative entry.
	Error string
}

// DeliveryTarget is one inbox an activity must be POSTed to.
type DeliveryTarget struct {
	// Inbox is the absolute URL to POST to (a shared inbox where the peer has one).
	Inbox string
	// Host is the inbox's host, the unit of per-host concurrency and circuit breaking.
	Host string
}

// Delivery is one leased row of the durable queue: one activity to one inbox.
type Delivery struct {
	// ID identifies the row for MarkDelivered, MarkFailed and GiveUp.
	ID int64
	// ActivityID names the outbox activity to send (its body is in the outbox).
	ActivityID string
	// ActorID is the local actor whose key signs the request.
	ActorID string
	// Inbox is the target URL.
	Inbox string
	// Host is the target host.
	Host string
	// Attempt is the number of this attempt, starting at 1; the retry schedule uses it.
	Attempt int
	// LeaseOwner is the worker that holds the row.
	LeaseOwner string
	// LeaseExpires is when the row becomes due again if the worker dies (UTC).
	LeaseExpires time.Time
	// LastError is the error of the previous attempt, empty on the first.
	LastError string
}

// LeaseRequest asks for due deliveries. Two workers never receive the same row, and a
// row whose lease expires becomes due again, so a killed worker loses nothing.
type LeaseRequest struct {
	// Now is the clock reading; injectable so tests compress days of retries.
	Now time.Time
	// Limit is the largest number of rows returned.
	Limit int
	// Lease is how long the worker may hold the rows before they return to due.
	Lease time.Duration
	// Owner names the worker (pod name plus a random suffix).
	Owner string
}

// QueueStats summarises the delivery queue for metrics and FederationServer status.
type QueueStats struct {
	// Pending rows will be attempted (due, leased, or waiting for a retry).
	Pending int64
	// Due rows can be leased now.
	Due int64
	// Retrying rows are pending after at least one failed attempt.
	Retrying int64
	// Delivered rows got a 2xx and are kept only to refuse re-sending.
	Delivered int64
	// Dead rows were given up on.
	Dead int64
}

// HostState is the per-host delivery health, kept so that the executor can break the
// circuit for a failing host and mark it unavailable after failures on many days, as
// Mastodon does.
type HostState struct {
	// Host is the peer's host name.
	Host string
	// ConsecutiveFailures counts failures since the last success.
	ConsecutiveFailures int
	// FailureDays counts distinct UTC days with a failure since the last success.
	FailureDays int
	// Unavailable is set once FailureDays reaches the caller's threshold.
	Unavailable bool
	// LastSuccess is the last 2xx from the host (zero if never).
	LastSuccess time.Time
	// LastFailure is the last failed attempt (zero if never).
	LastFailure time.Time
}

// FeedState is the HTTP validator state of one polled feed, so that a poll after a
// restart still sends If-None-Match / If-Modified-Since.
type FeedState struct {
	// SourceID identifies the feed source (namespace/actor/source name).
	SourceID string
	// ETag is the last ETag header the feed returned.
	ETag string
	// LastModified is the last Last-Modified header, verbatim.
	LastModified string
	// PolledAt is when the feed was last fetched (UTC).
	PolledAt time.Time
}

// Store is everything the server and delivery executors persist. Every method runs
// in its own transaction; implementations are safe for concurrent use by several
// goroutines and, on PostgreSQL, by several replicas.
type Store interface {
	// Instance is which server the database belongs to (instance.go).
	Instance
	// RepoSurface keeps Repository actors' forks and likes (reposurface.go).
	RepoSurface
	// Tickets is the forge-write queue and the ticket records (tickets.go).
	Tickets
	// MergeRequests records federated merge requests (merge_requests.go).
	MergeRequests
	// SignatureProfiles remembers how each peer host takes signatures.
	SignatureProfiles
	// DeliveredBatches records many 2xx answers in one transaction (delivered_batch.go).
	DeliveredBatches
	// MentionTickets keeps the threads of issues opened by mentions (mention_tickets.go).
	MentionTickets
	// MergeRequestsOffered is the fork side of cross-instance merge requests (merge_requests_offered.go).
	MergeRequestsOffered
	// MergeRequestWithdrawals: closing and reopening from the fork (merge_request_withdrawals.go).
	MergeRequestWithdrawals
	// WebhookEvents is the queue of accepted forge webhooks (webhook_events.go).
	WebhookEvents
	// ReceivedExpectations shapes the received log's group commit (received_expect.go).
	ReceivedExpectations

	// AppendActivity stores a published activity (and its embedded object) and
	// enqueues its deliveries in the same transaction, so a crash between publishing
	// and fan-out cannot lose deliveries. It returns false, and enqueues nothing, when
	// an activity with the same ID exists: republishing is idempotent. The
	// deliveries are due at once (whatever clock the executor leases with).
	AppendActivity(ctx context.Context, a Activity, targets []DeliveryTarget) (created bool, err error)
	// GetActivity returns the activity published at id, or ErrNotFound.
	GetActivity(ctx context.Context, id string) (Activity, error)
	// GetObject returns the object published at id, or ErrNotFound.
	GetObject(ctx context.Context, id string) (Object, error)
	// ListOutbox returns one keyset page of an actor's outbox, newest first.
	ListOutbox(ctx context.Context, q OutboxQuery) (OutboxPage, error)
	// CountOutbox returns an actor's outbox size for the given visibilities (empty:
	// Public and Unlisted) in O(1), from counters kept in the append transaction.
	CountOutbox(ctx context.Context, actorID string, vis ...Visibility) (int64, error)

	// RecordReceived stores an inbound activity for the given local recipients unless
	// its ID was seen before; isNew is false for a replay, which callers ignore.
	RecordReceived(ctx context.Context, r Received, recipients []string) (isNew bool, err error)
	// GetReceived returns a received activity by ID, or ErrNotFound.
	GetReceived(ctx context.Context, id string) (Received, error)
	// ListReceived returns one keyset page of what a local actor received, newest first.
	ListReceived(ctx context.Context, localActorID, cursor string, limit int) (ReceivedPage, error)

	// PutRemoteActor inserts or replaces a cached remote actor (positive or negative)
	// together with its keys.
	PutRemoteActor(ctx context.Context, a RemoteActor) error
	// GetRemoteActor returns a cached actor, expired or not (the caller compares
	// ExpiresAt with its clock), or ErrNotFound.
	GetRemoteActor(ctx context.Context, id string) (RemoteActor, error)
	// GetRemoteKey returns a cached key by key ID with its owner's expiry, or ErrNotFound.
	GetRemoteKey(ctx context.Context, keyID string) (PublicKey, time.Time, error)
	// DeleteRemoteActor forgets an actor and its keys (Delete received, key rotation).
	DeleteRemoteActor(ctx context.Context, id string) error

	// EnqueueDeliveries adds deliveries of an existing activity in one transaction,
	// due at due. A target that already has a row for this activity (pending,
	// delivered or dead) is skipped, so an inbox that answered 2xx is never sent the
	// same activity again. It returns how many rows were added.
	EnqueueDeliveries(ctx context.Context, activityID string, targets []DeliveryTarget, due time.Time) (int, error)
	// LeaseDeliveries hands out up to Limit due rows, oldest due first, to one worker.
	LeaseDeliveries(ctx context.Context, req LeaseRequest) ([]Delivery, error)
	// MarkDelivered records a 2xx: the row is never leased again. It succeeds even
	// if the lease was lost, because the peer has the activity either way.
	MarkDelivered(ctx context.Context, id int64, at time.Time) error
	// MarkFailed releases a leased row with its next attempt time and the error, or
	// returns ErrLeaseLost when owner no longer holds it.
	MarkFailed(ctx context.Context, id int64, owner string, next time.Time, lastErr string) error
	// GiveUp dead-letters a leased row (permanent 4xx, retries exhausted), or
	// returns ErrLeaseLost when owner no longer holds it.
	GiveUp(ctx context.Context, id int64, owner string, at time.Time, reason string) error
	// PendingDeliveries counts the rows of one activity still to be attempted, so a
	// finalizer can wait until an actor's farewell Delete has gone out.
	PendingDeliveries(ctx context.Context, activityID string) (int64, error)
	// QueueStats counts rows by state at now, for metrics and status.
	QueueStats(ctx context.Context, now time.Time) (QueueStats, error)
	// PruneDeliveries deletes delivered and dead rows finished before before, to
	// bound the table; it returns how many rows were removed.
	PruneDeliveries(ctx context.Context, before time.Time) (int64, error)

	// RecordHostSuccess resets a host's failure counters and clears Unavailable:
	// a host comes back as soon as it is heard from.
	RecordHostSuccess(ctx context.Context, host string, at time.Time) error
	// RecordHostFailure counts a failure, and marks the host unavailable once it has
	// failed on unavailableAfterDays distinct UTC days since its last success.
	RecordHostFailure(ctx context.Context, host string, at time.Time, unavailableAfterDays int) (HostState, error)
	// GetHostState returns a host's state; an unknown host is healthy (zero state).
	GetHostState(ctx context.Context, host string) (HostState, error)
	// ListUnavailableHosts returns the hosts currently marked unavailable, for
	// Subscription status and metrics.
	ListUnavailableHosts(ctx context.Context) ([]HostState, error)

	// MarkFeedEntriesSeen remembers entry IDs of a feed source and returns those not
	// seen before, in input order. Call it after the entries were published, so a
	// crash republishes (idempotently) rather than loses.
	MarkFeedEntriesSeen(ctx context.Context, sourceID string, entryIDs []string, at time.Time) ([]string, error)
	// FilterUnseenFeedEntries returns the entry IDs not yet marked seen, in input order.
	FilterUnseenFeedEntries(ctx context.Context, sourceID string, entryIDs []string) ([]string, error)
	// GetFeedState returns the validators of a feed source (zero state if never polled).
	GetFeedState(ctx context.Context, sourceID string) (FeedState, error)
	// PutFeedState stores the validators of a feed source.
	PutFeedState(ctx context.Context, s FeedState) error

	// Close releases connections; the store must not be used afterwards.
	Close() error

	GroupCommits
}
