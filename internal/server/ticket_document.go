package server

import (
	"context"
	"errors"
	"html"
	"net/http"
	"strconv"
	"strings"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/forge"
	"github.com/fedforge/fedforge/internal/forge/gitea"
	"github.com/fedforge/fedforge/internal/render"
	"github.com/fedforge/fedforge/internal/store"
	"github.com/fedforge/fedforge/internal/urls"
)

// The Ticket of every issue of a repository that takes tickets, served at its stable id
// <actor>/issues/<n> as ForgeFed describes it, read from the forge through a 30 s cache
// (tickets.go) and completed from the store for tickets offered from the Fediverse (their
// author). Its replies collection lists the remote Notes written as comments, its
// followers collection the remote participants.

// ticketActor resolves the actor and issue number of a Ticket request; it has answered
// when ok is false.
func (f *federation) ticketActor(w http.ResponseWriter, r *http.Request) (*localActor, int64, bool) {
	return f.numberedActor(w, r, func(a *fedv1.FederatedActor) bool { takes, _ := takesTickets(a); return takes })
}

// numberedActor resolves the actor and the {number} of a request for one of its numbered
// documents (an issue's or a pull request's Ticket), when serves says the actor has
// them; it has answered (404) when ok is false. Only the canonical decimal form of a
// positive number is one (not 0, 01 or +1), so that each Ticket has one URL.
func (f *federation) numberedActor(w http.ResponseWriter, r *http.Request, serves func(*fedv1.FederatedActor) bool) (*localActor, int64, bool) {
	la, ok := f.collectionActor(w, r)
	if !ok {
		return nil, 0, false
	}
	n, err := strconv.ParseInt(r.PathValue("number"), 10, 64)
	if !serves(la.obj) || err != nil || n <= 0 || strconv.FormatInt(n, 10) != r.PathValue("number") {
		notFound(w, true)
		return nil, 0, false
	}
	return la, n, true
}

// ticket serves GET <actor>/issues/<n>.
func (f *federation) ticket(w http.ResponseWriter, r *http.Request) {
	la, n, ok := f.ticketActor(w, r)
	if !ok {
		return
	}
	doc, status, err := f.ticketDocument(r.Context(), la, n)
	if status == http.StatusNotFound {
		notFound(w, true)
		return
	} else if err != nil {
		f.log.Info("serving a Ticket failed", "ticket", la.urls.Ticket(n), "forge", la.obj.Spec.Forge.URL, "error", err.Error())
		w.Header().Set("Retry-After", "30")
		http.Error(w, "the forge did not answer", status)
		return
	}
	w.Header().Set("Cache-Control", "max-age=30")
	writeAS2(w, doc)
}

// ticketDocument builds the Ticket of issue n; the status says what an error means (404
// for no such issue, 502 for a forge that did not answer).
func (f *federation) ticketDocument(ctx context.Context, la *localActor, n int64) (*activitypub.Object, int, error) {
	is, err := f.tickets.issue(ctx, la, n)
	if e, ok := forge.AsAPIError(err); ok && e.StatusCode == http.StatusNotFound {
		return nil, http.StatusNotFound, err
	} else if err != nil {
		return nil, http.StatusBadGateway, err
	}
	if is.PullRequest {
		return nil, http.StatusNotFound, errors.New("a pull request, not an issue")
	}
	id := la.urls.Ticket(n)
	body := is.Body
	author := is.AuthorURL
	rec, err := f.store.GetTicket(ctx, id)
	switch {
	case err == nil:
		author = rec.AuthorID
		body = withoutAttribution(body)
	case !errors.Is(err, store.ErrNotFound):
		return nil, http.StatusInternalServerError, err
	}
	resolved := is.Closed
	doc := &activitypub.Object{
		Context: activitypub.ActivityContext(), ID: id, Type: activitypub.Types{activitypub.TypeTicket},
		Name: is.Title, Summary: html.EscapeString(is.Title),
		Content: render.Markdown(body), MediaType: "text/html",
		Source:    &activitypub.Content{Content: body, MediaType: "text/markdown"},
		URL:       activitypub.IRIRefs(is.URL),
		Published: activitypub.Time{Time: is.Created}, Updated: activitypub.Time{Time: is.Updated},
		ASContext: activitypub.IRIRef(la.urls.ID),
		Replies:   activitypub.IRIRef(urls.Replies(id)),
		Followers: urls.ObjectFollowers(id),
		To:        activitypub.IRIRefs(activitypub.PublicIRI),
		Cc:        activitypub.IRIRefs(urls.ObjectFollowers(id)),
	}
	if author != "" {
		doc.AttributedTo = activitypub.IRIRefs(author)
	}
	doc.IsResolved = &resolved
	if resolved && !is.ClosedAt.IsZero() {
		doc.Resolved = activitypub.Time{Time: is.ClosedAt}
	}
	return doc, http.StatusOK, nil
}

// withoutAttribution cuts the credit line and key marker Fedforge appended to an offered
// ticket's body (gitea.Attributed): the Ticket names its author in attributedTo.
func withoutAttribution(body string) string {
	if i := strings.LastIndex(body, "\n\n---\n\n*"); i >= 0 {
		return body[:i]
	}
	if i := strings.Index(body, gitea.KeyMarker); i >= 0 {
		return strings.TrimSpace(body[:i])
	}
	return body
}

// ticketReplies serves GET <actor>/issues/<n>/replies: the remote Notes written as
// comments of the ticket, oldest first.
func (f *federation) ticketReplies(w http.ResponseWriter, r *http.Request) {
	la, n, ok := f.ticketActor(w, r)
	if !ok {
		return
	}
	f.serveReplies(w, r, la.urls.Ticket(n))
}

// serveReplies writes the replies collection of the Ticket (issue or merge request) id:
// the remote Notes written as its comments, oldest first.
func (f *federation) serveReplies(w http.ResponseWriter, r *http.Request, id string) {
	cs, err := f.store.TicketComments(r.Context(), id)
	if err != nil {
		f.log.Info("reading a Ticket's replies failed", "ticket", id, "error", err.Error())
		http.Error(w, "lookup failed", http.StatusInternalServerError)
		return
	}
	items := make([]string, 0, len(cs))
	for _, c := range cs {
		if c.CommentID != 0 {
			items = append(items, c.NoteID)
		}
	}
	writeAS2(w, ticketCollection(urls.Replies(id), items))
}

// ticketFollowers serves GET <actor>/issues/<n>/followers: the remote participants.
func (f *federation) ticketFollowers(w http.ResponseWriter, r *http.Request) {
	la, n, ok := f.ticketActor(w, r)
	if !ok {
		return
	}
	f.serveFollowers(w, r, la.urls.Ticket(n))
}

// serveFollowers writes the followers collection of the Ticket (issue or merge request)
// id: its remote participants.
func (f *federation) serveFollowers(w http.ResponseWriter, r *http.Request, id string) {
	ps, err := f.store.TicketParticipants(r.Context(), id)
	if err != nil {
		f.log.Info("reading a Ticket's followers failed", "ticket", id, "error", err.Error())
		http.Error(w, "lookup failed", http.StatusInternalServerError)
		return
	}
	items := make([]string, 0, len(ps))
	for _, p := range ps {
		items = append(items, p.ActorID)
	}
	writeAS2(w, ticketCollection(urls.ObjectFollowers(id), items))
}

func ticketCollection(id string, items []string) *activitypub.Object {
	n := len(items)
	return &activitypub.Object{Context: activitypub.ActivityContext(), ID: id, Type: activitypub.Types{activitypub.TypeOrderedCollection},
		TotalItems: &n, OrderedItems: activitypub.IRIRefs(items...)}
}
