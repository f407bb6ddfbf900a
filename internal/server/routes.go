package server

import (
	"net/http"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
)

// Handler returns the server's HTTP routes: the one route table of `fedforge server`.
func (s *Server) Handler() http.Handler {
	f, d := s.fed, s.fed.docs
	mux := http.NewServeMux()
	// Probes.
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
	// Discovery (discovery.go).
	mux.Handle("GET /.well-known/webfinger", activitypub.WebFingerHandler(d.webFinger))
	mux.HandleFunc("GET /.well-known/host-meta", d.hostMeta)
	mux.HandleFunc("GET /.well-known/host-meta.json", d.hostMeta)
	mux.HandleFunc("GET /.well-known/nodeinfo", d.nodeInfoDiscovery)
	mux.Handle("GET /nodeinfo/2.0", activitypub.NodeInfoHandler("2.0", d.nodeInfo))
	mux.Handle("GET /nodeinfo/2.1", activitypub.NodeInfoHandler("2.1", d.nodeInfo))
	// Actors and their collections (actor_document.go, collections.go).
	// With spec.authorizedFetch they need signed GETs (authorized_fetch.go); the actor
	// document keeps an unsigned key stub.
	mux.HandleFunc("GET /actors/{username}", f.signedFetch(d.actor, true))
	mux.HandleFunc("GET /actors/{username}/outbox", f.signedFetch(f.outbox, false))
	mux.HandleFunc("GET /actors/{username}/followers", f.signedFetch(f.relations(fedv1.DirectionInbound), false))
	mux.HandleFunc("GET /actors/{username}/following", f.signedFetch(f.relations(fedv1.DirectionOutbound), false))
	mux.HandleFunc("GET /actors/{username}/{kind}/{rest...}", f.signedFetch(func(w http.ResponseWriter, r *http.Request) {
		switch r.PathValue("kind") {
		case "activities", "objects":
			f.published(w, r)
		default:
			notFound(w, wantsActivity(r.Header.Get("Accept")))
		}
	}, false))
	// Inboxes (inbox.go): server to server, and the owner's read of a personal inbox.
	mux.HandleFunc("POST /inbox", f.inbox)
	mux.HandleFunc("POST /actors/{username}/inbox", f.inbox)
	mux.Handle("GET /actors/{username}/inbox", s.inboxRead)
	// Client to server: the owner's outbox POST.
	mux.Handle("POST /actors/{username}/outbox", s.c2s)
	// Forge webhooks (sources.go).
	mux.Handle("POST /hooks/{username}/{source}", s.webhooks)
	return mux
}
