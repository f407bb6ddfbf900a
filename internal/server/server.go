// Package server is `fedforge server`: the HTTP server that the Fediverse talks to for one
// FederationServer. It reads its configuration (the server, its actors, policies,
// Subscriptions and key Secrets) from informer caches of its namespace, never with an API
// call per request, and writes only Subscriptions and status.
package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/delivery"
	"github.com/fedforge/fedforge/internal/store"
	"github.com/fedforge/fedforge/internal/version"
)

// Options configure one server process.
type Options struct {
	// Server is the FederationServer this process serves.
	Server types.NamespacedName
	// Listen is the address to listen on, such as 127.0.0.1:8080 or :8080; empty means
	// Run serves no HTTP (tests mount Handler themselves).
	Listen string
	// Config reaches the API server.
	Config *rest.Config
	// Scheme knows Fedforge's kinds.
	Scheme *runtime.Scheme
	// Store holds the outbox, received activities, the remote actor cache and the
	// delivery queue. Required.
	Store store.Store
	// Client is the one outbound client (the network guard, signatures, double knock),
	// shared with the delivery executor; nil builds one from AllowedCIDRs, AllowHTTP and
	// Resolve, which must match it when set (the feed fetcher reads AllowHTTP).
	Client *activitypub.Client
	// Delivery, when set, runs an in-process delivery executor with these metrics and
	// log; nil leaves the queue to something else (delivery Jobs, a test).
	Delivery *DeliveryOptions
	// AllowedCIDRs are private ranges peers may live in (the FederationServer's
	// allowedPrivateCIDRs); everything private is refused otherwise.
	AllowedCIDRs []netip.Prefix
	// AllowHTTP lets peers be reached over plain http (local mode and tests).
	AllowHTTP bool
	// Resolve maps host[:port] to ip:port for outbound requests, so several instances
	// with real host names can run on 127.0.0.x.
	Resolve map[string]string
	// LeaderElection makes one replica run the exchanges (Accept, Follow, ...); every
	// replica serves HTTP.
	LeaderElection bool
	// MetricsAddr serves Prometheus metrics; "0" or empty disables them.
	MetricsAddr string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// FeedTick is how often feed sources are checked for being due (default 30 s).
	FeedTick time.Duration
	// InternalListen serves InternalHandler (the delivery queue for Jobs) on an address
	// that the Service exposes inside the cluster only; empty serves nothing.
	InternalListen string
	// InternalHandler is what InternalListen serves.
	InternalHandler http.Handler
	// StatusInterval is how often the delivery summary and Subscription reachability
	// are written (default 1 min).
	StatusInterval time.Duration
	// ShutdownDelay is how long the listener keeps serving after the process is told to
	// stop, with /readyz already answering 503, so that the Service's endpoints drop the
	// replica before it stops accepting connections (a rolling update refuses nothing).
	// Zero shuts down at once (tests, make run).
	ShutdownDelay time.Duration
}

// DeliveryOptions configure the in-process delivery executor.
type DeliveryOptions struct {
	Metrics *delivery.Metrics
	Log     logr.Logger
	// Lease is how long a worker owns the rows it took (delivery.DefaultLease when zero).
	Lease time.Duration
}

// keyRefetchInterval is the least time between two refetches of one remote key after a
// failed verification: short enough that a peer's key rotation heals within minutes even
// when its Update arrives after its first newly signed request, long enough that a peer
// cannot make us fetch on every request.
const keyRefetchInterval = 2 * time.Minute

// Server serves one FederationServer.
type Server struct {
	opts      Options
	webhooks  http.Handler
	c2s       http.Handler
	inboxRead http.Handler
	lookup    http.Handler // the owner's lookup endpoint (lookup.go)
	mgr       manager.Manager
	cache     cache.Cache
	fed       *federation
	exec      *delivery.Executor // in-process delivery; nil when Jobs deliver
	ready     atomic.Bool
	draining  atomic.Bool // set once shutdown began: /readyz answers 503
}

// New builds a server whose caches cover only its namespace, and only the Secrets
// Fedforge manages.
func New(o Options) (*Server, error) {
	if o.Server.Name == "" || o.Server.Namespace == "" {
		return nil, errors.New("server: --server must be namespace/name")
	}
	if o.Store == nil {
		return nil, errors.New("server: a store is required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	managed := labels.SelectorFromSet(labels.Set{fedv1.LabelManagedBy: fedv1.ManagedByValue})
	metricsAddr := o.MetricsAddr
	if metricsAddr == "" {
		metricsAddr = "0"
	}
	mgr, err := ctrl.NewManager(o.Config, ctrl.Options{
		Scheme: o.Scheme,
		Cache: cache.Options{
			DefaultNamespaces: map[string]cache.Config{o.Server.Namespace: {}},
			ByObject:          map[client.Object]cache.ByObject{&corev1.Secret{}: {Label: managed}},
		},
		MapperProvider:          newCachedRESTMapper,
		Metrics:                 metricsserver.Options{BindAddress: metricsAddr},
		HealthProbeBindAddress:  "0",
		LeaderElection:          o.LeaderElection,
		LeaderElectionID:        o.Server.Name + "-server.federation.fedforge.dev",
		LeaderElectionNamespace: o.Server.Namespace,
		Logger:                  logf.Log.WithName("server").WithValues("server", o.Server.String()),
	})
	if err != nil {
		return nil, fmt.Errorf("server: creating manager: %w", err)
	}
	c := mgr.GetCache()
	if err := indexActors(context.Background(), c); err != nil {
		return nil, fmt.Errorf("server: indexing actors: %w", err)
	}
	if err := indexSubscriptions(context.Background(), c); err != nil {
		return nil, fmt.Errorf("server: indexing subscriptions: %w", err)
	}
	pols := &policies{reader: c, srv: o.Server}
	if err := pols.watch(context.Background(), c); err != nil {
		return nil, fmt.Errorf("server: watching policies: %w", err)
	}
	// Construction in dependency order: the client, the local actors (the key source),
	// the Subscriptions, then the delivery executor that signs with the actors' keys, then
	// the federation that publishes through it.
	apc := o.Client
	if apc == nil {
		apc = activitypub.NewClient(activitypub.ClientConfig{
			Version: version.Version, AllowedCIDRs: o.AllowedCIDRs, Resolve: o.Resolve, AllowHTTP: o.AllowHTTP,
			Profiles: delivery.StoreProfiles{S: o.Store}, NodeInfoProfiles: true,
		})
	}
	log := logf.Log.WithName("server").WithValues("server", o.Server.String())
	acs := &actors{reader: c, srv: o.Server, now: o.Now}
	apc.SetPins(acs.pinnedProfile) // spec.signatures.pins, live from the cache
	subs := &subscriptions{reader: c, writer: writer{api: mgr.GetAPIReader(), kube: mgr.GetClient()}, srv: o.Server, log: log}
	var exec *delivery.Executor
	var heardFrom func(ctx context.Context, host string) error
	if o.Delivery != nil {
		exec, err = delivery.NewExecutor(delivery.Config{
			Queue: o.Store, Client: apc, Keys: acs, OnGone: subs.onGone, Metrics: o.Delivery.Metrics, Log: o.Delivery.Log,
			Lease: o.Delivery.Lease,
		})
		if err != nil {
			return nil, fmt.Errorf("server: delivery executor: %w", err)
		}
		heardFrom = exec.HeardFrom
	}
	// Without an in-process executor (delivery Jobs), the publisher kicks no one: a nil
	// *Executor in the Kicker interface is not a nil interface, and its Kick panicked.
	var kick delivery.Kicker
	if exec != nil {
		kick = exec
	}
	// Metrics of every server in the process share the registry the metrics endpoint
	// serves, told apart by a server label.
	reg := prometheus.WrapRegistererWith(prometheus.Labels{"server": o.Server.String()}, crmetrics.Registry)
	sm, err := newServerMetrics(reg, o.Store)
	if err != nil {
		return nil, fmt.Errorf("server: metrics: %w", err)
	}
	recorder := mgr.GetEventRecorder("fedforge-server")
	keyStore := &activitypub.MemoryKeyStore{}
	f := &federation{
		srv: o.Server, reader: c, kube: mgr.GetClient(), store: o.Store, client: apc,
		actors: acs, docs: &documents{actors: acs, notices: o.Store}, subs: subs,
		keyStore: keyStore, keyTTL: 24 * time.Hour, pub: delivery.NewPublisher(o.Store, kick), heardFrom: heardFrom, now: o.Now,
		log:      log,
		refused:  &refusals{recorder: recorder},
		policies: pols,
		recorder: recorder,
		metrics:  sm,
	}
	f.keyCache = activitypub.NewKeyCache(apc, keyStore, activitypub.KeyCacheConfig{TTL: f.keyTTL, Now: o.Now, RefetchInterval: keyRefetchInterval, SignerFunc: acs.anySigner,
		OnActor: func(ctx context.Context, actor *activitypub.Object) {
			if actor.Inbox != "" {
				_, _ = f.cacheActor(ctx, actor)
			}
		}})
	f.verifier = activitypub.NewVerifier(f.keyCache, 100000)
	f.verifier.Now = o.Now
	f.verifier.Origin = acs.publicOrigin // peers sign our public URL, not what the Ingress forwards
	if f.tickets, err = newTicketing(f); err != nil {
		return nil, fmt.Errorf("server: forge writes: %w", err)
	}
	f.fetchVerifier = &activitypub.Verifier{Keys: f.keyCache, Now: o.Now, Origin: acs.publicOrigin}
	f.actorFetchVerifier = &activitypub.Verifier{Keys: activitypub.CachedOnly{Cache: f.keyCache, OnMiss: f.fetchKeyLater}, Now: o.Now, Origin: acs.publicOrigin}
	s := &Server{opts: o, mgr: mgr, cache: c, fed: f, exec: exec}
	if err := s.setupControllers(); err != nil {
		return nil, err
	}
	if err := s.setupSources(reg); err != nil {
		return nil, fmt.Errorf("server: sources: %w", err)
	}
	if err := mgr.Add(manager.RunnableFunc(s.flushRefusals)); err != nil {
		return nil, err
	}
	if err := mgr.Add(manager.RunnableFunc(s.reportDelivery)); err != nil {
		return nil, err
	}
	// Every replica writes into forges (leases keep a write on one); the elected one
	// reports the queue in status.forgeWrites.
	if err := mgr.Add(everyReplica(s.runForgeWrites)); err != nil {
		return nil, err
	}
	if err := mgr.Add(manager.RunnableFunc(s.reportForgeWrites)); err != nil {
		return nil, err
	}
	if err := mgr.Add(manager.RunnableFunc(s.syncSignaturePins)); err != nil {
		return nil, err
	}
	return s, nil
}
