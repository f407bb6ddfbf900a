package server

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strings"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/sources"
	"github.com/fedforge/fedforge/internal/store"
)

// pageSize is the number of items per collection page, as Mastodon serves.
const pageSize = 20

// collection is an OrderedCollection or one of its pages. Items are raw JSON so that
// outbox pages embed the stored activities byte for byte.
type collection struct {
	Context      string             `json:"@context,omitempty"`
	ID           string             `json:"id"`
	Type         string             `json:"type"`
	TotalItems   *int64             `json:"totalItems,omitempty"`
	First        string             `json:"first,omitempty"`
	PartOf       string             `json:"partOf,omitempty"`
	Next         string             `json:"next,omitempty"`
	OrderedItems *[]json.RawMessage `json:"orderedItems,omitempty"`
}

const asContext = "https://www.w3.org/ns/activitystreams"

// collectionActor resolves {username} of a collection route, answering 404 or 503 itself.
func (f *federation) collectionActor(w http.ResponseWriter, r *http.Request) (*localActor, bool) {
	la, err := f.actors.byName(r.Context(), r.PathValue("username"))
	switch {
	case errors.Is(err, errNotLocal):
		notFound(w, true)
		return nil, false
	case errors.Is(err, errNoServer):
		w.Header().Set("Retry-After", retryAfterSeconds)
		http.Error(w, "server not configured yet", http.StatusServiceUnavailable)
		return nil, false
	case err != nil:
		http.Error(w, "lookup failed", http.StatusInternalServerError)
		return nil, false
	}
	return la, true
}

func writeAS2(w http.ResponseWriter, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encoding failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentTypeActivity)
	w.Header().Set("Vary", "Accept, Signature")
	_, _ = w.Write(body)
}

// pageRequested reports whether the request asks for a page rather than the collection.
func pageRequested(q url.Values) bool { return q.Has("page") || q.Has("cursor") }

// outbox serves the public outbox: an OrderedCollection with totalItems, whose pages are
// keyset pages of the store (an opaque cursor; page cost does not grow with depth).
func (f *federation) outbox(w http.ResponseWriter, r *http.Request) {
	la, ok := f.collectionActor(w, r)
	if !ok {
		return
	}
	id := la.urls.Outbox()
	q := r.URL.Query()
	if !pageRequested(q) {
		n, err := f.store.CountOutbox(r.Context(), la.urls.ID)
		if err != nil {
			http.Error(w, "outbox unavailable", http.StatusInternalServerError)
			return
		}
		writeAS2(w, collection{Context: asContext, ID: id, Type: "OrderedCollection", TotalItems: &n, First: id + "?page=true"})
		return
	}
	page, err := f.store.ListOutbox(r.Context(), store.OutboxQuery{ActorID: la.urls.ID, Cursor: q.Get("cursor"), Limit: pageSize})
	raws := make([]json.RawMessage, 0, len(page.Items))
	for _, a := range page.Items {
		raws = append(raws, a.Raw)
	}
	writeStorePage(w, id, q, raws, page.Next, err, "outbox")
}

// writeStorePage answers one keyset page read from the store (err from that read): 400
// for a cursor the store did not issue, 500 for other failures, else the page.
func writeStorePage(w http.ResponseWriter, id string, q url.Values, items []json.RawMessage, next string, err error, what string) {
	if errors.Is(err, store.ErrBadCursor) {
		http.Error(w, "bad cursor", http.StatusBadRequest)
		return
	} else if err != nil {
		http.Error(w, what+" unavailable", http.StatusInternalServerError)
		return
	}
	pageID := id
	if enc := q.Encode(); enc != "" {
		pageID += "?" + enc
	}
	c := collection{Context: asContext, ID: pageID, Type: "OrderedCollectionPage", PartOf: id, OrderedItems: &items}
	if next != "" {
		c.Next = id + "?cursor=" + url.QueryEscape(next)
	}
	writeAS2(w, c)
}

// followersCollection serves an actor's accepted followers (Inbound) or the actors it
// follows (Outbound), with totalItems and keyset pages ordered by actor ID.
func (f *federation) relations(dir fedv1.Direction) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		la, ok := f.collectionActor(w, r)
		if !ok {
			return
		}
		id := la.urls.Followers()
		if dir == fedv1.DirectionOutbound {
			id = la.urls.Following()
		}
		ids, err := f.relationIDs(r.Context(), la, dir)
		if err != nil {
			http.Error(w, "collection unavailable", http.StatusInternalServerError)
			return
		}
		n := int64(len(ids))
		q := r.URL.Query()
		if !pageRequested(q) {
			writeAS2(w, collection{Context: asContext, ID: id, Type: "OrderedCollection", TotalItems: &n, First: id + "?page=true"})
			return
		}
		start := 0
		if c := q.Get("cursor"); c != "" {
			after, err := base64.RawURLEncoding.DecodeString(c)
			if err != nil {
				http.Error(w, "bad cursor", http.StatusBadRequest)
				return
			}
			start = sort.SearchStrings(ids, string(after))
			if start < len(ids) && ids[start] == string(after) {
				start++
			}
		}
		end := min(start+pageSize, len(ids))
		items := make([]json.RawMessage, 0, end-start)
		for _, s := range ids[start:end] {
			b, _ := json.Marshal(s)
			items = append(items, b)
		}
		c := collection{Context: asContext, ID: id + "?" + q.Encode(), Type: "OrderedCollectionPage", TotalItems: &n, PartOf: id, OrderedItems: &items}
		if end < len(ids) {
			c.Next = id + "?cursor=" + base64.RawURLEncoding.EncodeToString([]byte(ids[end-1]))
		}
		writeAS2(w, c)
	}
}

// relationIDs returns the sorted remote actor IDs of an actor's accepted Subscriptions in
// one direction, from the informer cache.
func (f *federation) relationIDs(ctx context.Context, la *localActor, dir fedv1.Direction) ([]string, error) {
	subs, err := f.subs.list(ctx, indexSubActor, la.obj.Name)
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(subs))
	for _, s := range subs {
		if s.Spec.Direction == dir && s.Status.Phase == fedv1.PhaseAccepted && s.Status.RemoteActorID != "" && s.DeletionTimestamp == nil {
			ids = append(ids, s.Status.RemoteActorID)
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// published serves GET of an activity or object a local actor published, at its ID.
// Public and unlisted ones are served to anyone; followers-only ones only to requests
// signed by an accepted follower or an addressee; direct ones only to addressees. A
// refused reader gets 404, as from Mastodon, so that existence does not leak.
func (f *federation) published(w http.ResponseWriter, r *http.Request) {
	la, ok := f.collectionActor(w, r)
	if !ok {
		return
	}
	id := la.urls.ID + "/" + r.PathValue("kind") + "/" + r.PathValue("rest")
	var raw json.RawMessage
	var vis store.Visibility
	var err error
	if r.PathValue("kind") == "activities" {
		var a store.Activity
		a, err = f.store.GetActivity(r.Context(), id)
		raw, vis = a.Raw, a.Visibility
	} else {
		var o store.Object
		o, err = f.store.GetObject(r.Context(), id)
		raw, vis = o.Raw, o.Visibility
	}
	if errors.Is(err, store.ErrNotFound) {
		notFound(w, true)
		return
	} else if err != nil {
		http.Error(w, "lookup failed", http.StatusInternalServerError)
		return
	}
	if vis != store.Public && vis != store.Unlisted && !f.mayRead(r, la, raw, vis) {
		notFound(w, true)
		return
	}
	w.Header().Set("Content-Type", contentTypeActivity)
	w.Header().Set("Vary", "Accept, Signature")
	if vis != store.Public && vis != store.Unlisted {
		w.Header().Set("Cache-Control", "private")
	}
	_, _ = w.Write(raw)
}

// mayRead checks a signed GET of a non-public document: the signer must be an addressee,
// or (for followers-only) an accepted follower of the actor.
func (f *federation) mayRead(r *http.Request, la *localActor, raw json.RawMessage, vis store.Visibility) bool {
	v, err := f.verifier.VerifyRequest(r.Context(), r, nil)
	if err != nil {
		return false
	}
	doc, err := activitypub.DecodeObject(raw)
	if err != nil {
		return false
	}
	for _, ref := range append(append(append(doc.To, doc.Cc...), doc.Bto...), doc.Bcc...) {
		if ref.ID() == v.Owner {
			return true
		}
	}
	if vis != store.Followers {
		return false
	}
	ids, err := f.relationIDs(r.Context(), la, fedv1.DirectionInbound)
	if err != nil {
		return false
	}
	i := sort.SearchStrings(ids, v.Owner)
	return i < len(ids) && ids[i] == v.Owner
}

// inboxCollection serves GET /actors/{username}/inbox to the actor's owner: the
// activities the actor received, newest first, in keyset pages. It takes the same
// bearer token as the client-to-server outbox (Secret <actor>-outbox-token, key token);
// anyone else gets 401, as the inbox is private.
func (f *federation) inboxCollection(secrets *secretCache) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		la, ok := f.collectionActor(w, r)
		if !ok {
			return
		}
		if !f.ownerToken(r, la, secrets) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="fedforge inbox"`)
			http.Error(w, "the inbox is readable by its owner only: send the outbox token as a bearer token", http.StatusUnauthorized)
			return
		}
		id := la.urls.Inbox()
		q := r.URL.Query()
		page, err := f.store.ListReceived(r.Context(), la.urls.ID, q.Get("cursor"), pageSize)
		raws := make([]json.RawMessage, 0, len(page.Items))
		for _, a := range page.Items {
			raws = append(raws, a.Raw)
		}
		w.Header().Set("Cache-Control", "private")
		writeStorePage(w, id, q, raws, page.Next, err, "inbox")
	}
}

// ownerToken checks "Authorization: Bearer <token>" against the actor's outbox token.
func (f *federation) ownerToken(r *http.Request, la *localActor, secrets *secretCache) bool {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return false
	}
	ref, enabled := sources.DefaultOutboxTokenRef(la.obj)
	if !enabled {
		return false
	}
	want, err := secrets.get(r.Context(), la.obj.Namespace, ref)
	if err != nil || len(want) == 0 {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(token)), bytes.TrimSpace(want)) == 1
}
