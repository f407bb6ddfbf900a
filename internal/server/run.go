package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/fedforge/fedforge/internal/httpguard"

	"github.com/go-logr/logr"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
)

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
	if d := h.s.opts.ShutdownDelay; d > 0 && h.addr == "" {
		// Not ready any more, but still serving while the endpoints catch up.
		h.s.draining.Store(true)
		h.log.Info("draining before shutdown", "delay", d.String())
		select {
		case <-time.After(d):
		case err := <-errc:
			return err
		}
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return hs.Shutdown(shutdown)
}

// everyReplica is a runnable that runs on every replica, leader or not.
type everyReplica func(ctx context.Context) error

// NeedLeaderElection implements manager.LeaderElectionRunnable.
func (everyReplica) NeedLeaderElection() bool { return false }

// Start implements manager.Runnable.
func (r everyReplica) Start(ctx context.Context) error { return r(ctx) }

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
	if s.exec != nil {
		// Every replica delivers: the queue's leases keep two from sending one row.
		if err := s.mgr.Add(everyReplica(s.exec.Run)); err != nil {
			return err
		}
	}
	return s.mgr.Start(ctx)
}

// watchReady marks the server ready once its caches are synced, its FederationServer
// exists and its store answers, and keeps checking every second, so readiness drops when
// the object is deleted or the database goes away, and comes back with it.
func (s *Server) watchReady(ctx context.Context) {
	if !s.cache.WaitForCacheSync(ctx) {
		return
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		err := s.cache.Get(ctx, s.opts.Server, &fedv1.FederationServer{})
		if err == nil {
			// A replica whose database is restarting or out of reach is taken out of
			// the Service until it answers again: its inbox could only answer 503.
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			err = s.opts.Store.Ping(pctx)
			cancel()
			if err != nil && ctx.Err() == nil && s.ready.Load() {
				logf.FromContext(ctx).Info("not ready: the store does not answer", "server", s.opts.Server.String(), "error", err.Error())
			}
		}
		s.ready.Store(err == nil)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
