package delivery

import (
	"context"
	"time"

	"github.com/fedforge/fedforge/internal/store"
)

// Queue is the part of store.Store an Executor needs. It is an interface so that a
// delivery Job can lease from the server over HTTP (RemoteQueue) when the store is a
// SQLite file the Job cannot open, and from the store itself when it is PostgreSQL.
// store.Store implements it; so does RemoteQueue.
type Queue interface {
	// LeaseDeliveries hands out due rows to one worker; see store.Store.
	LeaseDeliveries(ctx context.Context, req store.LeaseRequest) ([]store.Delivery, error)
	// GetActivity returns the activity whose body is POSTed, or store.ErrNotFound.
	GetActivity(ctx context.Context, id string) (store.Activity, error)
	// MarkDelivered records a 2xx; idempotent.
	MarkDelivered(ctx context.Context, id int64, at time.Time) error
	// MarkFailed releases a leased row until next, or returns store.ErrLeaseLost.
	MarkFailed(ctx context.Context, id int64, owner string, next time.Time, lastErr string) error
	// GiveUp dead-letters a leased row, or returns store.ErrLeaseLost.
	GiveUp(ctx context.Context, id int64, owner string, at time.Time, reason string) error
	// RecordHostSuccess resets a host's failure counters.
	RecordHostSuccess(ctx context.Context, host string, at time.Time) error
	// RecordHostFailure counts a failure and marks the host unavailable after failures
	// on unavailableAfterDays distinct days.
	RecordHostFailure(ctx context.Context, host string, at time.Time, unavailableAfterDays int) (store.HostState, error)
	// ListUnavailableHosts returns the hosts marked unavailable.
	ListUnavailableHosts(ctx context.Context) ([]store.HostState, error)
}

// Stats is what metrics and the FederationServer status summary read; store.Store
// implements it (a Job has no metrics of the queue: the server reports them).
type Stats interface {
	// QueueStats counts rows by state at now.
	QueueStats(ctx context.Context, now time.Time) (store.QueueStats, error)
	// ListUnavailableHosts returns the hosts marked unavailable.
	ListUnavailableHosts(ctx context.Context) ([]store.HostState, error)
}

// Pruner deletes finished rows; an Executor whose Queue implements it (store.Store
// does, RemoteQueue does not: the server prunes its own queue) prunes periodically.
type Pruner interface {
	// PruneDeliveries deletes delivered and dead rows finished before before.
	PruneDeliveries(ctx context.Context, before time.Time) (int64, error)
}

// Compile-time checks: the store is a Queue, a Stats source and a Pruner.
var (
	_ Queue  = store.Store(nil)
	_ Stats  = store.Store(nil)
	_ Pruner = store.Store(nil)
)
