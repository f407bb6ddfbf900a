package server

import (
	"context"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/store"
)

// The finalizer and annotation of exchanges, from the API package.
const (
	AnnotationNoExchange = fedv1.AnnotationNoExchange
	FinalizerExchange    = fedv1.FinalizerExchange
)

// federation is the protocol side of one server: the inbox, the exchanges that follow
// from it, and the signing keys of the local actors. It reads Kubernetes objects from
// the informer cache and writes only Subscriptions and status.
type federation struct {
	srv      types.NamespacedName
	actors   *actors       // local actors and their signers
	docs     *documents    // actor documents (Update of a changed one)
	reader   client.Reader // the informer cache
	kube     client.Client
	subs     *subscriptions // Subscription lookups and writes
	store    store.Store
	client   *activitypub.Client
	verifier *activitypub.Verifier
	// fetchVerifier checks signed GETs under authorized fetch: the verifier's rules
	// without replay detection (a GET repeated within a second is harmless, and peers do).
	fetchVerifier *activitypub.Verifier
	// actorFetchVerifier checks signed GETs of actor documents from cached keys only.
	actorFetchVerifier *activitypub.Verifier
	keyCache           *activitypub.KeyCache
	keyStore           activitypub.KeyStore
	keyTTL             time.Duration
	pub                Publisher
	now                func() time.Time
	log                logr.Logger
	refused            *refusals
	policies           *policies
	// heardFrom tells the delivery executor that a host answered us with a verified
	// request, so a host marked unavailable comes back at once.
	heardFrom func(ctx context.Context, host string) error
	// recorder writes Events on Subscriptions, actors and policies (events.go).
	recorder events.EventRecorder
	// metrics counts inbox requests and exchanges (metrics.go); nil counts nothing.
	metrics *serverMetrics
	// recent is the inbox's in-memory replay check (received.go).
	recent recentActivities
	// tickets takes tickets and replies into the forge (tickets.go).
	tickets *ticketing
	// lookups rate-limits the profile form's WebFinger lookups (remote_follow.go).
	lookups lookupLimiter
	// moveChecks spaces the checks of an unconfirmed move target (move_local.go).
	moveChecks moveThrottle
	// upstreamLookups spaces the forge reads that look for an undeclared upstream
	// (upstream_found.go).
	upstreamLookups upstreamMemo
}
