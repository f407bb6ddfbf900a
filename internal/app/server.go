package app

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"

	logf "sigs.k8s.io/controller-runtime/pkg/log"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/delivery"
	"github.com/fedforge/fedforge/internal/server"
	"github.com/fedforge/fedforge/internal/store"
	"github.com/fedforge/fedforge/internal/version"
)

// ServerOptions configure `fedforge server`, the process serving one FederationServer.
type ServerOptions struct {
	// Server is the FederationServer, as namespace/name.
	Server string
	// Listen is the HTTP address.
	Listen string
	// PublicHost is the FederationServer's public host, named in the User-Agent of every
	// outbound request so that remote admins can tell who we are.
	PublicHost string
	// StoreDSN opens the store: sqlite:///path/file.db or a postgres:// DSN.
	StoreDSN string
	// AllowedCIDRs are private ranges peers may live in (from the FederationServer).
	AllowedCIDRs []string
	// AllowHTTP lets peers be reached over plain http.
	AllowHTTP bool
	// Resolve maps host[:port]=ip[:port], so instances with real names run on 127.0.0.x.
	Resolve []string
	// LeaderElection runs the exchanges on one replica only.
	LeaderElection bool
	// MetricsAddr serves Prometheus metrics; "0" disables them.
	MetricsAddr string
	// FeedTick is how often feed sources are checked for being due (default 30 s).
	FeedTick time.Duration
	// InternalListen serves the delivery queue to delivery Jobs, authenticated with
	// DeliveryToken; empty (or no token) serves nothing.
	InternalListen string
	// DeliveryToken is the bearer token of the internal queue endpoint.
	DeliveryToken string
	// StatusInterval is how often status summaries are written (default 1 min).
	StatusInterval time.Duration
	// ShutdownDelay keeps serving this long after SIGTERM, not ready (server.Options).
	ShutdownDelay time.Duration
	// DeliveryLease is how long a worker owns the delivery rows it took (spec.delivery.lease).
	DeliveryLease time.Duration
	// NoInProcessDelivery leaves every delivery to delivery Jobs.
	NoInProcessDelivery bool
}

// ParseResolve parses host=ip[:port] mappings. A mapping without a port keeps the
// port of the URL being fetched.
func ParseResolve(list []string) (map[string]string, error) {
	out := map[string]string{}
	for _, m := range list {
		for _, m := range strings.Split(m, ",") {
			m = strings.TrimSpace(m)
			if m == "" {
				continue
			}
			host, addr, ok := strings.Cut(m, "=")
			if !ok || host == "" || addr == "" {
				return nil, fmt.Errorf("--resolve %q: want host[:port]=ip[:port]", m)
			}
			out[strings.ToLower(host)] = addr
		}
	}
	return out, nil
}

// parseNetwork parses the outbound client's --resolve and --allowed-cidr flags.
func parseNetwork(resolve, cidrs []string) (map[string]string, []netip.Prefix, error) {
	r, err := ParseResolve(resolve)
	if err != nil {
		return nil, nil, err
	}
	c, err := ParseCIDRs(cidrs)
	return r, c, err
}

// ParseCIDRs parses a list of CIDRs (comma-separated entries are split).
func ParseCIDRs(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, c := range list {
		for _, c := range strings.Split(c, ",") {
			c = strings.TrimSpace(c)
			if c == "" {
				continue
			}
			p, err := netip.ParsePrefix(c)
			if err != nil {
				return nil, fmt.Errorf("allowed CIDR %q: %w", c, err)
			}
			out = append(out, p)
		}
	}
	return out, nil
}

// RunServer opens the store and serves one FederationServer until ctx ends: the
// inboxes, collections and discovery, the exchanges, and the in-process delivery
// executor.
func RunServer(ctx context.Context, cfg *rest.Config, o ServerOptions) error {
	ns, name, ok := strings.Cut(o.Server, "/")
	if !ok || ns == "" || name == "" {
		return fmt.Errorf("server: --server %q must be namespace/name", o.Server)
	}
	resolve, cidrs, err := parseNetwork(o.Resolve, o.AllowedCIDRs)
	if err != nil {
		return err
	}
	if o.StoreDSN == "" {
		return fmt.Errorf("server: no store: set --store or FEDFORGE_STORE_DSN")
	}
	cfg = withoutClientThrottling(cfg)
	st, err := openStore(ctx, cfg, types.NamespacedName{Namespace: ns, Name: name}, o.StoreDSN, o.Listen)
	if err != nil {
		return err
	}
	defer st.Close()
	// Dependency order: the store (above), the outbound client, the delivery metrics;
	// server.New then builds the key source and the executor that shares them.
	client := activitypub.NewClient(activitypub.ClientConfig{
		Version: version.Version, InstanceHost: o.PublicHost, AllowedCIDRs: cidrs, AllowHTTP: o.AllowHTTP, Resolve: resolve,
		// Signature profiles learnt per host are shared through the store with the other
		// replicas and the delivery Jobs (docs/decisions.md, "Signatures chosen per peer").
		Profiles: delivery.StoreProfiles{S: st}, NodeInfoProfiles: true, Log: logf.FromContext(ctx).WithName("signatures"),
	})
	var deliveryOpts *server.DeliveryOptions
	if !o.NoInProcessDelivery {
		reg := prometheus.WrapRegistererWith(prometheus.Labels{"server": o.Server}, crmetrics.Registry)
		metrics, err := delivery.NewMetrics(reg, st)
		if err == nil {
			defer metrics.Unregister(reg) // the store closes with this run
		} else {
			// A second server of the same name in one process (tests) cannot share the
			// endpoint's registry; it keeps its metrics to itself.
			logf.FromContext(ctx).Info("delivery metrics not exported", "reason", err.Error())
			if metrics, err = delivery.NewMetrics(prometheus.NewRegistry(), st); err != nil {
				return err
			}
		}
		deliveryOpts = &server.DeliveryOptions{Metrics: metrics, Log: logf.FromContext(ctx).WithName("delivery"), Lease: o.DeliveryLease}
	}
	srv, err := server.New(server.Options{
		Server: types.NamespacedName{Namespace: ns, Name: name}, Listen: o.Listen, Config: cfg, Scheme: Scheme(),
		Store: st, Client: client, Delivery: deliveryOpts, AllowedCIDRs: cidrs, AllowHTTP: o.AllowHTTP, Resolve: resolve,
		LeaderElection: o.LeaderElection, MetricsAddr: o.MetricsAddr, FeedTick: o.FeedTick,
		InternalListen: o.InternalListen, InternalHandler: internalHandler(st, o.DeliveryToken), StatusInterval: o.StatusInterval, ShutdownDelay: o.ShutdownDelay,
	})
	if err != nil {
		return err
	}
	return srv.Run(ctx, nil)
}

// withoutClientThrottling leaves flow control to the API server (priority and fairness),
// as controller-runtime's GetConfig does: a config with QPS 0 (envtest's, a kubeconfig
// file's) would otherwise get client-go's default of 5 requests a second.
func withoutClientThrottling(cfg *rest.Config) *rest.Config {
	if cfg.QPS != 0 || cfg.RateLimiter != nil {
		return cfg
	}
	c := rest.CopyConfig(cfg)
	c.QPS = -1
	return c
}

// internalHandler serves the store's delivery queue to Jobs under delivery.QueuePath;
// nil without a token (the endpoint refuses everything then anyway).
func internalHandler(st store.Store, token string) http.Handler {
	if token == "" {
		return nil
	}
	mux := http.NewServeMux()
	mux.Handle(delivery.QueuePath+"/", http.StripPrefix(delivery.QueuePath, delivery.QueueHandler(st, token)))
	return mux
}

// DeliverOptions configure `fedforge deliver`, the entry point of a delivery Job.
type DeliverOptions struct {
	// QueueURL is the server's internal queue endpoint; Token authenticates to it.
	QueueURL, Token string
	// StoreDSN leases from PostgreSQL directly instead.
	StoreDSN string
	// KeysDir holds the mounted key Secrets; Actors are "actorID=dir" under it.
	KeysDir string
	Actors  []string
	// PublicHost is the FederationServer's public host, for the User-Agent.
	PublicHost string
	// AllowedCIDRs, AllowHTTP and Resolve configure the outbound client as the server's.
	AllowedCIDRs []string
	AllowHTTP    bool
	Resolve      []string
	// MaxDuration bounds the run.
	MaxDuration time.Duration
}

// RunDeliver drains the due deliveries of a server's queue and returns.
func RunDeliver(ctx context.Context, o DeliverOptions) error {
	resolve, cidrs, err := parseNetwork(o.Resolve, o.AllowedCIDRs)
	if err != nil {
		return err
	}
	var actors []delivery.JobActor
	for _, a := range o.Actors {
		i := strings.LastIndexByte(a, '=')
		if i <= 0 || i == len(a)-1 {
			return fmt.Errorf("deliver: --actor %q: want actorID=dir", a)
		}
		actors = append(actors, delivery.JobActor{ID: a[:i], Dir: a[i+1:]})
	}
	log := logf.FromContext(ctx).WithName("deliver")
	res, err := delivery.RunJob(ctx, delivery.JobOptions{
		QueueURL: o.QueueURL, Token: o.Token, StoreDSN: o.StoreDSN, KeysDir: o.KeysDir, Actors: actors,
		Client:      activitypub.ClientConfig{Version: version.Version, InstanceHost: o.PublicHost, AllowedCIDRs: cidrs, AllowHTTP: o.AllowHTTP, Resolve: resolve},
		MaxDuration: o.MaxDuration, Log: log,
	})
	if err != nil {
		return err
	}
	log.Info("delivery Job done", "delivered", res.Delivered, "retried", res.Retried, "givenUp", res.GivenUp, "rounds", res.Rounds, "timedOut", res.TimedOut)
	return nil
}
