// Package server is `fedforge server`: the HTTP server that the Fediverse talks to for one
// FederationServer. It reads its configuration (the server, its actors, policies,
// Subscriptions and key Secrets) from informer caches of its namespace, never with an API
// call per request, and writes only Subscriptions and status.
package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	crhandler "sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/delivery"
	"github.com/fedforge/fedforge/internal/httpguard"
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
	// Publisher queues published activities; nil appends to Store without delivering
	// (something else drains the queue).
	Publisher Publisher
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
	mgr       manager.Manager
	cache     cache.Cache
	fed       *federation
	ready     atomic.Bool
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
	host := ""
	apc := activitypub.NewClient(activitypub.ClientConfig{
		Version: version.Version, InstanceHost: host, AllowedCIDRs: o.AllowedCIDRs, Resolve: o.Resolve, AllowHTTP: o.AllowHTTP,
	})
	keyStore := &activitypub.MemoryKeyStore{}
	f := &federation{
		srv: o.Server, reader: c, kube: mgr.GetClient(), api: mgr.GetAPIReader(), store: o.Store, client: apc,
		keyStore: keyStore, keyTTL: 24 * time.Hour, pub: o.Publisher, now: o.Now,
		log:      logf.Log.WithName("server").WithValues("server", o.Server.String()),
		refused:  &refusals{},
		policies: &policies{reader: c, srv: o.Server},
	}
	if f.pub == nil {
		f.pub = delivery.NewPublisher(o.Store, nil)
	}
	f.recorder = mgr.GetEventRecorder("fedforge-server")
	f.keyCache = activitypub.NewKeyCache(apc, keyStore, activitypub.KeyCacheConfig{TTL: f.keyTTL, Now: o.Now, RefetchInterval: keyRefetchInterval, SignerFunc: f.anySigner,
		OnActor: func(ctx context.Context, actor *activitypub.Object) {
			if actor.Inbox != "" {
				_, _ = f.cacheActor(ctx, actor)
			}
		}})
	f.verifier = activitypub.NewVerifier(f.keyCache, 100000)
	f.verifier.Now = o.Now
	s := &Server{opts: o, mgr: mgr, cache: c, fed: f}
	if err := s.setupControllers(); err != nil {
		return nil, err
	}
	// Metrics of every server in the process share the registry the metrics endpoint
	// serves, told apart by a server label.
	reg := prometheus.WrapRegistererWith(prometheus.Labels{"server": o.Server.String()}, crmetrics.Registry)
	if err := s.setupSources(reg); err != nil {
		return nil, fmt.Errorf("server: sources: %w", err)
	}
	if err := mgr.Add(manager.RunnableFunc(s.flushRefusals)); err != nil {
		return nil, err
	}
	if err := mgr.Add(manager.RunnableFunc(s.reportDelivery)); err != nil {
		return nil, err
	}
	return s, nil
}

// Signer returns the signer of a local actor by ID: the delivery executor's key source.
func (s *Server) Signer(ctx context.Context, actorID string) (*activitypub.Signer, error) {
	return s.fed.Signer(ctx, actorID)
}

// Client is the server's one outbound client, for the delivery executor to share.
func (s *Server) Client() *activitypub.Client { return s.fed.client }

// OnGone removes the Subscriptions whose personal inbox answered 410 Gone: the remote
// actor no longer exists. A shared inbox that is gone says nothing about one actor.
func (s *Server) OnGone(ctx context.Context, d store.Delivery) {
	subs, err := s.fed.subscriptions(ctx, indexSubHost, d.Host)
	if err != nil {
		return
	}
	for i := range subs {
		if subs[i].Status.RemoteInbox == d.Inbox && subs[i].Status.RemoteSharedInbox == "" {
			s.fed.log.Info("remote actor is gone (410); removing its Subscription", "subscription", subs[i].Name, "inbox", d.Inbox)
			_ = s.fed.deleteQuietly(ctx, &subs[i])
		}
	}
}

// SetHeardFrom registers the delivery executor's HeardFrom, called for every verified
// inbox request with the sender's host.
func (s *Server) SetHeardFrom(fn func(ctx context.Context, host string) error) { s.fed.heardFrom = fn }

// SetPublisher replaces the publisher before Run, once the delivery executor (which
// needs the server's Signer) exists.
func (s *Server) SetPublisher(p Publisher) { s.fed.pub = p }

// setupControllers registers the exchanges, which run on the elected replica only.
func (s *Server) setupControllers() error {
	opts := controller.Options{MaxConcurrentReconciles: 16, SkipNameValidation: ptrTrue()}
	if err := ctrl.NewControllerManagedBy(s.mgr).Named("subscription-exchange").WithOptions(opts).
		For(&fedv1.Subscription{}).
		Watches(&fedv1.FederatedActor{}, crhandler.EnqueueRequestsFromMapFunc(s.subscriptionsOfActor), builder.WithPredicates()).
		Complete(&subscriptionExchange{f: s.fed}); err != nil {
		return err
	}
	if err := ctrl.NewControllerManagedBy(s.mgr).Named("policy-enforcement").WithOptions(opts).
		For(&fedv1.FederationPolicy{}).
		Complete(&policyEnforcement{f: s.fed}); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(s.mgr).Named("actor-exchange").WithOptions(opts).
		For(&fedv1.FederatedActor{}).
		Watches(&corev1.Secret{}, crhandler.EnqueueRequestsFromMapFunc(actorOfSecret)).
		Watches(&fedv1.Subscription{}, crhandler.EnqueueRequestsFromMapFunc(actorOfSubscription)).
		Complete(&actorExchange{f: s.fed})
}

func ptrTrue() *bool { b := true; return &b }

// subscriptionsOfActor requeues an actor's Subscriptions when the actor changes (its
// keys arrive, manual approval is switched).
func (s *Server) subscriptionsOfActor(ctx context.Context, o client.Object) []reconcile.Request {
	subs, err := s.fed.subscriptions(ctx, indexSubActor, o.GetName())
	if err != nil {
		return nil
	}
	out := make([]reconcile.Request, 0, len(subs))
	for _, sub := range subs {
		out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: sub.Namespace, Name: sub.Name}})
	}
	return out
}

func actorOfSecret(_ context.Context, o client.Object) []reconcile.Request {
	if a := o.GetLabels()[fedv1.LabelActor]; a != "" {
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: a}}}
	}
	return nil
}

func actorOfSubscription(_ context.Context, o client.Object) []reconcile.Request {
	s := o.(*fedv1.Subscription)
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: s.Namespace, Name: s.Spec.ActorRef.Name}}}
}

// flushRefusals writes refusal counts into FederationPolicy status once a minute.
func (s *Server) flushRefusals(ctx context.Context) error {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			flush, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = s.fed.refused.flush(flush, s.fed.kube, s.opts.Server.Namespace)
			cancel()
			return nil
		case <-t.C:
			if err := s.fed.refused.flush(ctx, s.fed.kube, s.opts.Server.Namespace); err != nil {
				s.fed.log.Info("writing refusal counts failed; kept for the next minute", "error", err.Error())
			}
		}
	}
}

// reportDelivery writes the delivery queue's summary into the FederationServer's status
// once a minute (on the elected replica), so `kubectl get federationservers` shows what is
// queued and which hosts are unavailable, at a bounded cost to the API server.
func (s *Server) reportDelivery(ctx context.Context) error {
	if !s.cache.WaitForCacheSync(ctx) {
		return nil
	}
	every := s.opts.StatusInterval
	if every <= 0 {
		every = time.Minute
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := s.writeDeliveryStatus(ctx); err != nil && ctx.Err() == nil {
			s.fed.log.Info("writing the delivery summary failed; retrying in a minute", "error", err.Error())
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (s *Server) writeDeliveryStatus(ctx context.Context) error {
	sum, err := delivery.Summarize(ctx, s.opts.Store, s.opts.Now())
	if err != nil {
		return err
	}
	var fs fedv1.FederationServer
	if err := s.cache.Get(ctx, s.opts.Server, &fs); err != nil {
		return client.IgnoreNotFound(err)
	}
	at := metav1.NewTime(sum.ObservedAt.UTC().Truncate(time.Second))
	base := fs.DeepCopy()
	fs.Status.Delivery = &fedv1.DeliveryStatus{
		Pending: sum.Pending, Due: sum.Due, Retrying: sum.Retrying, Delivered: sum.Delivered, Dead: sum.Dead,
		UnavailableHosts: int32(sum.UnavailableHosts), UnavailableSample: sum.UnavailableSample, ObservedAt: &at,
	}
	if err := s.fed.kube.Status().Patch(ctx, &fs, client.MergeFrom(base)); err != nil {
		return err
	}
	return s.markReachability(ctx)
}

// markReachability sets the Reachable condition of Subscriptions whose host is marked
// unavailable (False), and flips it back (True) when the host is heard from again. A
// Subscription that never had a problem gets no condition, so a healthy server with many
// followers costs no writes here.
func (s *Server) markReachability(ctx context.Context) error {
	hosts, err := s.opts.Store.ListUnavailableHosts(ctx)
	if err != nil {
		return err
	}
	down := make(map[string]bool, len(hosts))
	for _, h := range hosts {
		down[h.Host] = true
	}
	var list fedv1.SubscriptionList
	if err := s.cache.List(ctx, &list, client.InNamespace(s.opts.Server.Namespace), client.UnsafeDisableDeepCopy); err != nil {
		return err
	}
	for i := range list.Items {
		sub := &list.Items[i]
		host := sub.Status.RemoteHost
		if host == "" {
			continue
		}
		unavailable := down[host] || down[strings.Split(host, ":")[0]]
		c := meta.FindStatusCondition(sub.Status.Conditions, fedv1.ConditionReachable)
		if (c == nil && !unavailable) || (c != nil && (c.Status == metav1.ConditionFalse) == unavailable) {
			continue
		}
		if err := s.fed.patchSubscriptionStatus(ctx, client.ObjectKeyFromObject(sub), func(x *fedv1.Subscription) {
			cond := metav1.Condition{Type: fedv1.ConditionReachable, Status: metav1.ConditionTrue, Reason: "HostAvailable",
				Message: host + " answers deliveries again", ObservedGeneration: x.Generation}
			if unavailable {
				cond.Status, cond.Reason = metav1.ConditionFalse, "HostUnavailable"
				cond.Message = "deliveries to " + host + " failed on 7 distinct days; they resume when it is heard from"
			}
			meta.SetStatusCondition(&x.Status.Conditions, cond)
		}); err != nil {
			return err
		}
	}
	return nil
}

// Handler returns the server's HTTP routes: probes, discovery (WebFinger, host-meta,
// NodeInfo), actor documents and collections, published activities and the inboxes.
func (s *Server) Handler() http.Handler {
	mux := newHandler(s.cache, s.opts.Server)
	f := s.fed
	s.routeSources(mux)
	mux.HandleFunc("POST /inbox", f.inbox)
	mux.HandleFunc("POST /actors/{username}/inbox", f.inbox)
	mux.HandleFunc("GET /actors/{username}/outbox", f.outbox)
	mux.HandleFunc("GET /actors/{username}/followers", f.relations(fedv1.DirectionInbound))
	mux.HandleFunc("GET /actors/{username}/following", f.relations(fedv1.DirectionOutbound))
	mux.HandleFunc("GET /actors/{username}/{kind}/{rest...}", func(w http.ResponseWriter, r *http.Request) {
		switch r.PathValue("kind") {
		case "activities", "objects":
			f.published(w, r)
		default:
			notFound(w, wantsActivity(r.Header.Get("Accept")))
		}
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if !s.ready.Load() {
			http.Error(w, "caches not synced or FederationServer not found", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	return mux
}

// Mux lets callers add routes (webhooks, the delivery queue endpoint) next to the
// server's own: it returns the handler as a ServeMux.
func (s *Server) Mux() *http.ServeMux { return s.Handler().(*http.ServeMux) }

// httpRunnable serves HTTP on every replica, leader or not.
type httpRunnable struct {
	s       *Server
	addr    string // default the server's Listen
	handler http.Handler
	log     logr.Logger
}

// NeedLeaderElection implements manager.LeaderElectionRunnable: every replica serves.
func (h httpRunnable) NeedLeaderElection() bool { return false }

// Start implements manager.Runnable.
func (h httpRunnable) Start(ctx context.Context) error {
	addr := h.addr
	if addr == "" {
		addr = h.s.opts.Listen
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("server: listening on %s: %w", addr, err)
	}
	// Header caps, CL+TE refusal and timeouts: internal/httpguard, docs/security.md.
	hs := httpguard.Server(h.handler, h.log)
	errc := make(chan error, 1)
	go func() {
		if err := hs.Serve(httpguard.Listener(ln)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
	}()
	h.log.Info("serving", "listen", ln.Addr().String())
	select {
	case <-ctx.Done():
	case err := <-errc:
		return err
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return hs.Shutdown(shutdown)
}

// readyRunnable keeps the readiness flag.
type readyRunnable struct{ s *Server }

func (r readyRunnable) NeedLeaderElection() bool { return false }
func (r readyRunnable) Start(ctx context.Context) error {
	r.s.watchReady(ctx)
	return nil
}

// Run serves until ctx ends: the caches, the HTTP listener (when Listen is set), the
// exchanges and the refusal counters. handler, when not nil, replaces Handler() (callers
// that added routes through Mux pass it).
func (s *Server) Run(ctx context.Context, h http.Handler) error {
	if s.opts.Listen != "" {
		if h == nil {
			h = s.Handler()
		}
		if err := s.mgr.Add(httpRunnable{s: s, handler: h, log: logf.FromContext(ctx).WithValues("server", s.opts.Server)}); err != nil {
			return err
		}
	}
	if s.opts.InternalListen != "" && s.opts.InternalHandler != nil {
		if err := s.mgr.Add(httpRunnable{s: s, addr: s.opts.InternalListen, handler: s.opts.InternalHandler, log: logf.FromContext(ctx).WithValues("server", s.opts.Server, "listener", "internal")}); err != nil {
			return err
		}
	}
	if err := s.mgr.Add(readyRunnable{s: s}); err != nil {
		return err
	}
	return s.mgr.Start(ctx)
}

// watchReady marks the server ready once its caches are synced and its FederationServer
// exists, and keeps checking, so readiness drops when the object is deleted.
func (s *Server) watchReady(ctx context.Context) {
	if !s.cache.WaitForCacheSync(ctx) {
		return
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		err := s.cache.Get(ctx, s.opts.Server, &fedv1.FederationServer{})
		s.ready.Store(err == nil)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
