package server

import (
	"encoding/json"
	"net/http"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/store"
)

// repositoryActor resolves {username} of a forks or likes route: only Repository actors
// have those collections (404 for every other actor, as for an unknown one).
func (f *federation) repositoryActor(w http.ResponseWriter, r *http.Request) (*localActor, bool) {
	la, ok := f.collectionActor(w, r)
	if !ok {
		return nil, false
	}
	if la.obj.Spec.Type != fedv1.ActorRepository {
		notFound(w, true)
		return nil, false
	}
	return la, true
}

// forks serves a Repository actor's ForgeFed forks collection: an OrderedCollection of
// the forks' ids (a peer's fork actor, or the fork's page on the forge), newest first as
// ForgeFed orders it, with totalItems and keyset pages from the store.
func (f *federation) forks(w http.ResponseWriter, r *http.Request) {
	la, ok := f.repositoryActor(w, r)
	if !ok {
		return
	}
	id, q := la.urls.Forks(), r.URL.Query()
	if !pageRequested(q) {
		n, err := f.store.CountForks(r.Context(), la.urls.ID)
		if err != nil {
			http.Error(w, "forks unavailable", http.StatusInternalServerError)
			return
		}
		writeAS2(w, collection{Context: asContext, ID: id, Type: activitypub.TypeOrderedCollection, TotalItems: &n, First: id + "?page=true"})
		return
	}
	page, err := f.store.ListForks(r.Context(), la.urls.ID, q.Get("cursor"), pageSize)
	items := make([]json.RawMessage, 0, len(page.Items))
	for _, fk := range page.Items {
		b, _ := json.Marshal(fk.ForkID)
		items = append(items, b)
	}
	writeStorePage(w, id, q, items, page.Next, err, "forks")
}

// likes serves a Repository actor's likes collection: the stars it was given in the
// forge and the ForgeFed Likes peers sent, one per liker, newest first. Each item is
// the Like (with its id when a peer sent it; a forge's star has no activity, so its
// Like is anonymous and names the forge user's page as actor); totalItems is the count.
func (f *federation) likes(w http.ResponseWriter, r *http.Request) {
	la, ok := f.repositoryActor(w, r)
	if !ok {
		return
	}
	id, q := la.urls.Likes(), r.URL.Query()
	if !pageRequested(q) {
		n, err := f.store.CountLikes(r.Context(), la.urls.ID)
		if err != nil {
			http.Error(w, "likes unavailable", http.StatusInternalServerError)
			return
		}
		writeAS2(w, collection{Context: asContext, ID: id, Type: activitypub.TypeOrderedCollection, TotalItems: &n, First: id + "?page=true"})
		return
	}
	page, err := f.store.ListLikes(r.Context(), la.urls.ID, q.Get("cursor"), pageSize)
	items := make([]json.RawMessage, 0, len(page.Items))
	for _, l := range page.Items {
		items = append(items, likeItem(l))
	}
	writeStorePage(w, id, q, items, page.Next, err, "likes")
}

// likeItem writes one stored like as the Like it stands for.
func likeItem(l store.Like) json.RawMessage {
	b, _ := json.Marshal(struct {
		ID     string `json:"id,omitempty"`
		Type   string `json:"type"`
		Actor  string `json:"actor"`
		Object string `json:"object"`
	}{ID: l.LikeID, Type: activitypub.TypeLike, Actor: l.LikerID, Object: l.ActorID})
	return b
}
