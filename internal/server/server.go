// Package server is `fedforge server`: the HTTP server that the Fediverse talks to for one
// FederationServer. It reads its configuration (the server, its actors, policies,
// Subscriptions and key Secrets) from informer caches of its namespace, never with an API
// call per request.
package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
)

// Options configure one server process.
type Options struct {
	// Server is the FederationServer this process serves.
	Server types.NamespacedName
	// Listen is the address to listen on, such as 127.0.0.1:8080 or :8080.
	Listen string
	// Config reaches the API server.
	Config *rest.Config
	// Scheme knows Fedforge's kinds.
	Scheme *runtime.Scheme
}

// Server serves one FederationServer.
type Server struct {
	opts  Options
	cache cache.Cache
	ready atomic.Bool
}

// New builds a server whose caches cover only its namespace, and only the Secrets
// Fedforge manages.
func New(o Options) (*Server, error) {
	if o.Server.Name == "" || o.Server.Namespace == "" {
		return nil, errors.New("server: --server must be namespace/name")
	}
	managed := labels.SelectorFromSet(labels.Set{fedv1.LabelManagedBy: fedv1.ManagedByValue})
	c, err := cache.New(o.Config, cache.Options{
		Scheme:            o.Scheme,
		DefaultNamespaces: map[string]cache.Config{o.Server.Namespace: {}},
		ByObject:          map[client.Object]cache.ByObject{&corev1.Secret{}: {Label: managed}},
	})
	if err != nil {
		return nil, fmt.Errorf("server: creating cache: %w", err)
	}
	if err := indexActors(context.Background(), c); err != nil {
		return nil, fmt.Errorf("server: indexing actors: %w", err)
	}
	return &Server{opts: o, cache: c}, nil
}

// Handler returns the server's HTTP routes: probes, discovery (WebFinger, host-meta,
// NodeInfo) and actor documents, all read from the informer cache.
func (s *Server) Handler() http.Handler {
	mux := newHandler(s.cache, s.opts.Server)
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

// Run starts the caches and serves until ctx ends, then shuts down gracefully.
func (s *Server) Run(ctx context.Context) error {
	log := logf.FromContext(ctx).WithValues("server", s.opts.Server)
	ln, err := net.Listen("tcp", s.opts.Listen)
	if err != nil {
		return fmt.Errorf("server: listening on %s: %w", s.opts.Listen, err)
	}
	hs := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
	errc := make(chan error, 2)
	go func() { errc <- s.cache.Start(ctx) }()
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
	}()
	go s.watchReady(ctx)
	log.Info("serving", "listen", ln.Addr().String())
	select {
	case <-ctx.Done():
	case err := <-errc:
		if err != nil {
			return err
		}
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return hs.Shutdown(shutdown)
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
