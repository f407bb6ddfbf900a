package server

import (
	"context"
	"encoding/json"
	"errors"
	"html"
	"net/http"
	"strings"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/store"
	"github.com/fedforge/fedforge/internal/urls"
)

// Media types of actor documents.
const (
	contentTypeActivity = "application/activity+json"
	retryAfterSeconds   = "10"
)

// documents serves the read-only public documents of one FederationServer (discovery,
// actor documents) from the actors' cache: every lookup is a read of the informer cache.
type documents struct {
	actors *actors
	// notices holds the upstreams found from the forge (upstream_found.go); nil shows
	// declared upstreams only.
	notices store.MergeRequestsOffered
}

// actor serves GET /actors/{username}: the AS2 document to ActivityPub clients, an HTML
// profile (or a redirect to spec.url) to browsers.
func (d *documents) actor(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Vary", "Accept")
	as2 := wantsActivity(r.Header.Get("Accept"))
	fs, ok := d.serverOr503(w, r)
	if !ok {
		return
	}
	a, err := d.actors.byUsername(r.Context(), r.PathValue("username"), false)
	if err != nil {
		http.Error(w, "lookup failed", http.StatusInternalServerError)
		return
	}
	if a == nil {
		notFound(w, as2)
		return
	}
	if !as2 {
		if a.Spec.URL != "" {
			http.Redirect(w, r, a.Spec.URL, http.StatusFound)
			return
		}
		writeProfilePage(w, fs, a)
		return
	}
	doc, err := d.actorDocument(r.Context(), fs, a)
	if errors.Is(err, errNoKeys) {
		w.Header().Set("Retry-After", retryAfterSeconds)
		http.Error(w, "actor keys not ready", http.StatusServiceUnavailable)
		return
	} else if err != nil {
		http.Error(w, "actor unavailable", http.StatusInternalServerError)
		return
	}
	body, err := json.Marshal(doc)
	if err != nil {
		http.Error(w, "encoding failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentTypeActivity)
	w.Header().Set("Access-Control-Allow-Origin", "*")
	_, _ = w.Write(body)
}

// actorDocument builds the AS2 actor document of a from its spec and its key Secret.
func (d *documents) actorDocument(ctx context.Context, fs *fedv1.FederationServer, a *fedv1.FederatedActor) (*activitypub.Object, error) {
	rsaPEM, edKey, err := d.actors.publicKeys(ctx, a)
	if err != nil {
		return nil, err
	}
	base := fs.BaseURL()
	u := urls.ForActor(base, a.Spec.PreferredUsername)
	kind := string(a.Spec.Type)
	if kind == "" {
		kind = string(fedv1.ActorService)
	}
	spec := activitypub.ActorSpec{
		ID:                u.ID,
		Types:             activitypub.FollowableTypes(kind),
		PreferredUsername: a.Spec.PreferredUsername,
		Name:              a.Spec.Name,
		Summary:           summaryHTML(a.Spec.Summary),
		URL:               a.Spec.URL,
		Inbox:             u.Inbox(),
		Outbox:            u.Outbox(),
		Followers:         u.Followers(),
		Following:         u.Following(),
		SharedInbox:       urls.SharedInbox(base),
		RSAPublicKeyPEM:   rsaPEM,
		Ed25519PublicKey:  edKey,
		ManuallyApproves:  a.Spec.ManuallyApprovesFollowers,
		Discoverable:      a.Spec.Discoverable == nil || *a.Spec.Discoverable,
		Published:         a.CreationTimestamp.UTC(),
		MovedTo:           a.Spec.MovedTo,
		AlsoKnownAs:       a.Spec.AlsoKnownAs,
	}
	if a.Spec.Icon != nil {
		spec.IconURL, spec.IconMediaType = a.Spec.Icon.URL, a.Spec.Icon.MediaType
	}
	forgeFedRepository(&spec, a, u)
	if up := d.foundUpstream(ctx, a, u.ID); up != "" {
		spec.ForkedFrom = up
	}
	return activitypub.NewActor(spec), nil
}

// forgeFedRepository adds the ForgeFed properties of a Repository actor. Every
// Repository has a forks and a likes collection (the store fills them from the forge's
// webhooks and from peers' fork notices and Likes). One that fronts a forge project
// (spec.forge) also names itself in ticketsTrackedBy, since the tickets offered to it
// are written into that project's issues, and shows cloneUri and, when the forge says
// the repository is a fork, forkedFrom (the parent's page on the forge; the upstream
// actor of spec.mergeRequests.upstream when that is set). Those come from
// status.forge, which the operator fills from the forge's API, so they are never
// hand-typed; until the operator has read the forge, the document has neither. team is
// not written: the current ForgeFed specification defines it on branches only, and no
// forge API gives Fedforge a team to point at (docs/decisions.md).
func forgeFedRepository(spec *activitypub.ActorSpec, a *fedv1.FederatedActor, u urls.Actor) {
	if a.Spec.Type != fedv1.ActorRepository {
		return
	}
	spec.Forks, spec.Likes = u.Forks(), u.Likes()
	defer func() {
		// A declared upstream on another instance is what this repository was forked
		// from, whatever the forge says (issue 14: the fork notice names it, and the
		// upstream checks this document against the notice).
		if up := mergeRequestUpstream(a); up != "" {
			spec.ForkedFrom = up
		}
	}()
	if a.Spec.Forge == nil {
		return
	}
	spec.TicketsTrackedBy = u.ID
	st := a.Status.Forge
	if st == nil {
		return
	}
	if st.CloneURI != "" {
		spec.CloneURI = []string{st.CloneURI}
	}
	spec.ForkedFrom = st.ForkedFrom
}

// summaryHTML turns the plain-text spec.summary into the HTML that summary holds in AS2:
// escaped, with paragraphs and line breaks.
func summaryHTML(s string) string {
	s = strings.TrimSpace(strings.ReplaceAll(s, "\r\n", "\n"))
	if s == "" {
		return ""
	}
	var b strings.Builder
	for _, p := range strings.Split(s, "\n\n") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		b.WriteString("<p>")
		b.WriteString(strings.ReplaceAll(html.EscapeString(p), "\n", "<br>"))
		b.WriteString("</p>")
	}
	return b.String()
}

// notFound answers 404 in the form the client asked for.
func notFound(w http.ResponseWriter, as2 bool) {
	if as2 {
		w.Header().Set("Content-Type", contentTypeActivity)
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"error":"not found"}` + "\n"))
		return
	}
	http.Error(w, "not found", http.StatusNotFound)
}
