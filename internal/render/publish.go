package render

import (
	"context"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/store"
)

// The two functions through which everything that renders activities (the webhook
// handler, the feed poller, the client-to-server outbox) hands them to the server. They
// are declared here, beside Render, so that those callers share them without depending
// on each other.

// PublishFunc appends rendered activities to the actor's outbox and enqueues their
// deliveries. It must be idempotent by activity id: forges retry, pollers restart, and
// the same ids come back. src is nil for client-to-server posts.
type PublishFunc func(ctx context.Context, actor *fedv1.FederatedActor, src *fedv1.EventSource, acts []store.Activity) error

// BaseFunc returns the public base URL (scheme://host) of the server, from which actor
// ids are made.
type BaseFunc func(ctx context.Context) (string, error)
