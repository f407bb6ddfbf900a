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
		if s.draining.Load() {
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		}
		if !s.ready.Load() {
			http.Error(w, "caches not synced, FederationServer not found or store not answering", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	// Discovery (discovery.go).
	mux.Handle("GET /.well-known/webfinger", activitypub.WebFingerHandler(d.webFinger))
	mux.HandleFunc("GET /.well-known/host-meta", d.hostMeta)
	mux.HandleFunc("GET /.well-known/host-meta.json", d.hostMeta)
	mux.HandleFunc("GET /.well-known/nodeinfo", d.nodeInfoDiscovery)
	mux.HandleFunc("GET /authorize_interaction", d.authorizeInteraction) // remote_follow.go
	mux.Handle("GET /nodeinfo/2.0", activitypub.NodeInfoHandler("2.0", d.nodeInfo))
	mux.Handle("GET /nodeinfo/2.1", activitypub.NodeInfoHandler("2.1", d.nodeInfo))
	// Actors and their collections (actor_document.go, collections.go).
	// With spec.authorizedFetch they need signed GETs (authorized_fetch.go); the actor
	// document keeps an unsigned key stub.
	mux.HandleFunc("GET /actors/{username}", f.signedFetch(d.actor, true))
	mux.HandleFunc("GET /actors/{username}/outbox", f.signedFetch(f.outbox, false))
	mux.HandleFunc("POST /actors/{username}/follow", f.remoteFollow) // the profile's form (remote_follow.go)
	mux.Handle("GET /actors/{username}/lookup", s.lookup)            // the owner's lookup by URL or handle (lookup.go)
	mux.HandleFunc("GET /actors/{username}/followers", f.signedFetch(f.relations(fedv1.DirectionInbound), false))
	mux.HandleFunc("GET /actors/{username}/following", f.signedFetch(f.relations(fedv1.DirectionOutbound), false))
	mux.HandleFunc("GET /actors/{username}/forks", f.signedFetch(f.forks, false)) // repo_collections.go
	mux.HandleFunc("GET /actors/{username}/likes", f.signedFetch(f.likes, false))
	// Tickets: every issue of a repository that takes tickets (ticket_document.go).
	mux.HandleFunc("GET /actors/{username}/issues/{number}", f.signedFetch(f.ticket, false))
	mux.HandleFunc("GET /actors/{username}/issues/{number}/replies", f.signedFetch(f.ticketReplies, false))
	mux.HandleFunc("GET /actors/{username}/issues/{number}/followers", f.signedFetch(f.ticketFollowers, false))
	// Merge requests: every pull request of a Repository actor with a forge, the Ticket
	// an upstream's Accept names and a fork's Offer carries (merge_request_document.go).
	mux.HandleFunc("GET /actors/{username}/merge-requests/{number}", f.signedFetch(f.mergeRequest, false))
	mux.HandleFunc("GET /actors/{username}/merge-requests/{number}/replies", f.signedFetch(f.mergeRequestReplies, false))
	mux.HandleFunc("GET /actors/{username}/merge-requests/{number}/followers", f.signedFetch(f.mergeRequestFollowers, false))
	mux.HandleFunc("GET /actors/{username}/{kind}/{rest...}", f.signedFetch(func(w http.ResponseWriter, r *http.Request) {
		switch r.PathValue("kind") {
		case "activities", "objects":
			f.published(w, r)
		case "issues", "merge-requests":
			// A comment's Note (<ticket>/comments/<id>), stored when it was published
			// (internal/render, threads.go); the Ticket itself has its own route.
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
	return closeWhileDraining(&s.draining, mux)
}

// closeWhileDraining answers with "Connection: close" once shutdown began, so that a
// keep-alive client opens its next connection to a replica that is still ready instead of
// reusing this one until Shutdown closes it idle: a request written on a connection at the
// moment the server closes it fails with EOF, and a POST is not retried (seen in the
// rollout e2e: 1 of 187 POSTs).
func closeWhileDraining(draining interface{ Load() bool }, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if draining.Load() {
			w.Header().Set("Connection", "close")
		}
		next.ServeHTTP(w, r)
	})
}
