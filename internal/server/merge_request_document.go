package server

import (
	"context"
	"encoding/json"
	"errors"
	"html"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/forge"
	"github.com/fedforge/fedforge/internal/render"
	"github.com/fedforge/fedforge/internal/store"
	"github.com/fedforge/fedforge/internal/urls"
)

// The merge-request Ticket of every pull request of a Repository actor with a forge,
// served at its stable id <actor>/merge-requests/<n> as ForgeFed describes a merge
// request (docs/merge-requests.md, "The merge-request Ticket document"): a Ticket whose
// one Offer attachment names the origin and target Branches, read from the forge through
// a 30 s cache like issue Tickets. It is the id the upstream's Accept names as its result
// (a federated pull request on A) and the id of the Ticket the fork offers (B); the store
// completes what the forge does not know (who offered it, from which branch).

// pullCache is the short cache of pull requests read to serve their Tickets, like the
// issue cache in tickets.go (same TTL and bound). A pull_request webhook of the actor's
// source drops the entry (recordForgeEvent), so a merge shows at once on the replica
// that took the webhook and within the TTL on the others.
type pullCache struct {
	entries sync.Map // issueKey -> cachedPull
	flights singleflight.Group
}

type cachedPull struct {
	pr  forge.PullRequest
	err error
	at  time.Time
}

// readsPulls says whether an actor's pull requests are served as merge-request Tickets:
// a Repository with spec.forge on Gitea or Forgejo, whether or not it takes tickets or
// merge requests from the Fediverse (a fork's own pull requests are Tickets too).
func readsPulls(a *fedv1.FederatedActor) bool {
	return a.Spec.Type == fedv1.ActorRepository && a.Spec.Forge != nil &&
		(a.Spec.Forge.Type == fedv1.ForgeGitea || a.Spec.Forge.Type == fedv1.ForgeForgejo)
}

// pullReader builds the forge reader of an actor whose pull requests are served, with
// its token read through the server's short Secret cache.
func (t *ticketing) pullReader(ctx context.Context, la *localActor) (forge.PullReader, forge.Repository, error) {
	w, err := t.giteaClient(ctx, la)
	if err != nil {
		return nil, forge.Repository{}, err
	}
	return w, forge.Repository{FullName: la.obj.Spec.Forge.Project}, nil
}

// pull reads a pull request through the cache; concurrent misses of one share a call.
// An answer is cached, a missing pull request too; a forge that is down is not.
func (t *ticketing) pull(ctx context.Context, la *localActor, number int64) (forge.PullRequest, error) {
	k := issueKey{la.urls.ID, number}
	if v, ok := t.pulls.entries.Load(k); ok && t.f.now().Sub(v.(cachedPull).at) < issueTTL {
		c := v.(cachedPull)
		return c.pr, c.err
	}
	v, err, _ := t.pulls.flights.Do(la.urls.ID+"#"+strconv.FormatInt(number, 10), func() (any, error) {
		r, repo, err := t.pullReader(ctx, la)
		if err != nil {
			return forge.PullRequest{}, err
		}
		pr, err := r.PullRequest(ctx, repo, number)
		if e, ok := forge.AsAPIError(err); err == nil || (ok && e.StatusCode == http.StatusNotFound) {
			n := 0
			t.pulls.entries.Range(func(any, any) bool { n++; return n < issueCacheMax })
			if n >= issueCacheMax {
				t.pulls.entries.Clear()
			}
			t.pulls.entries.Store(k, cachedPull{pr: pr, err: err, at: t.f.now()})
		}
		return pr, err
	})
	return v.(forge.PullRequest), err
}

// forgetPull drops a cached pull request (its forge sent a webhook about it).
func (t *ticketing) forgetPull(actorID string, number int64) {
	t.pulls.entries.Delete(issueKey{actorID, number})
}

// mergeRequestActor resolves the actor and number of a merge-request Ticket request; it
// has answered (404) when ok is false.
func (f *federation) mergeRequestActor(w http.ResponseWriter, r *http.Request) (*localActor, int64, bool) {
	return f.numberedActor(w, r, readsPulls)
}

// mergeRequest serves GET <actor>/merge-requests/<n>.
func (f *federation) mergeRequest(w http.ResponseWriter, r *http.Request) {
	la, n, ok := f.mergeRequestActor(w, r)
	if !ok {
		return
	}
	doc, status, err := f.mergeRequestDocument(r.Context(), la, n)
	if status == http.StatusNotFound {
		notFound(w, true)
		return
	} else if err != nil {
		f.log.Info("serving a merge-request Ticket failed", "ticket", la.urls.MergeRequest(n), "forge", la.obj.Spec.Forge.URL, "error", err.Error())
		if status == http.StatusBadGateway {
			w.Header().Set("Retry-After", "30")
			http.Error(w, "the forge did not answer", status)
		} else {
			http.Error(w, "lookup failed", status)
		}
		return
	}
	w.Header().Set("Cache-Control", "max-age=30")
	writeAS2(w, doc)
}

// mergeRequestReplies serves GET <actor>/merge-requests/<n>/replies.
func (f *federation) mergeRequestReplies(w http.ResponseWriter, r *http.Request) {
	if la, n, ok := f.mergeRequestActor(w, r); ok {
		f.serveReplies(w, r, la.urls.MergeRequest(n))
	}
}

// mergeRequestFollowers serves GET <actor>/merge-requests/<n>/followers.
func (f *federation) mergeRequestFollowers(w http.ResponseWriter, r *http.Request) {
	if la, n, ok := f.mergeRequestActor(w, r); ok {
		f.serveFollowers(w, r, la.urls.MergeRequest(n))
	}
}

// mergeRequestDocument builds the Ticket of pull request n; the status says what an
// error means (404 for no such pull request, 502 for a forge that did not answer, 500
// for the store). Three cases:
//   - a pull request Fedforge opened from an Offer (the store's merge-request record, A):
//     attributed to the offering actor, without the credit line and key marker, its
//     origin the offered Branch of that actor;
//   - a pull request this actor offered upstream (B): the Ticket of the Offer, attributed
//     to this actor and naming the forge user, its target the upstream's Branch;
//   - any other: attributed to the forge user's profile, origin and target the forge's
//     head and base branches.
func (f *federation) mergeRequestDocument(ctx context.Context, la *localActor, n int64) (*activitypub.Object, int, error) {
	pr, err := f.tickets.pull(ctx, la, n)
	if e, ok := forge.AsAPIError(err); ok && e.StatusCode == http.StatusNotFound {
		return nil, http.StatusNotFound, err
	} else if err != nil {
		return nil, http.StatusBadGateway, err
	}
	id := la.urls.MergeRequest(n)
	doc := &activitypub.Object{ID: id, Type: activitypub.Types{activitypub.TypeTicket}, Name: pr.Title, Summary: html.EscapeString(pr.Title),
		Content: render.Markdown(pr.Body), MediaType: "text/html", Source: &activitypub.Content{Content: pr.Body, MediaType: "text/markdown"}}
	if pr.AuthorURL != "" {
		doc.AttributedTo = activitypub.IRIRefs(pr.AuthorURL)
	}
	offer := &activitypub.Object{Type: activitypub.Types{activitypub.TypeOffer},
		Origin: activitypub.ObjectRef(forgeBranch(la, pr.Head, pr.Base)), Target: activitypub.ObjectRef(forgeBranch(la, pr.Base, pr.Base))}

	rec, err := f.store.GetMergeRequest(ctx, id)
	switch {
	case err == nil:
		body := withoutAttribution(pr.Body)
		doc.AttributedTo = activitypub.IRIRefs(rec.OriginActor)
		doc.Content, doc.Source.Content = render.Markdown(body), body
		origin := branchObject(rec.OriginActor, forge.ShortRef(rec.OriginRef))
		origin.Ref = rec.OriginRef
		offer.Origin = activitypub.ObjectRef(origin)
	case !errors.Is(err, store.ErrNotFound):
		return nil, http.StatusInternalServerError, err
	default:
		offered, err := f.store.OfferedMergeRequestsOf(ctx, la.urls.ID, n)
		if err != nil {
			return nil, http.StatusInternalServerError, err
		}
		if len(offered) > 0 {
			doc, offer = f.offeredTicket(la, pr, offered[len(offered)-1])
		}
	}
	if u := render.CleanURL(pr.DiffURL); u != "" {
		diff, _ := json.Marshal(map[string]string{"type": activitypub.TypeLink, "href": u, "mediaType": "text/x-diff"})
		offer.Extra = map[string]json.RawMessage{"mrDiff": diff}
	}
	doc.Attachment = activitypub.Refs{activitypub.ObjectRef(offer)}

	doc.Context = activitypub.ActivityContext()
	doc.ASContext = activitypub.IRIRef(la.urls.ID)
	if u := render.CleanURL(pr.URL); u != "" {
		doc.URL = activitypub.IRIRefs(u)
	}
	doc.Published, doc.Updated = activitypub.Time{Time: pr.Created}, activitypub.Time{Time: pr.Updated}
	doc.Replies, doc.Followers = activitypub.IRIRef(urls.Replies(id)), urls.ObjectFollowers(id)
	doc.To, doc.Cc = activitypub.IRIRefs(activitypub.PublicIRI), activitypub.IRIRefs(urls.ObjectFollowers(id))
	resolved := pr.Closed
	doc.IsResolved = &resolved
	switch {
	case pr.Merged && !pr.MergedAt.IsZero():
		doc.Resolved = activitypub.Time{Time: pr.MergedAt}
	case resolved && !pr.ClosedAt.IsZero():
		doc.Resolved = activitypub.Time{Time: pr.ClosedAt}
	}
	if pr.Merged && pr.MergeCommit != "" {
		// ForgeFed has no "merged" property: a merged merge request is resolved, and
		// resolvedBy may name the activity that resolved it. That is the merged Resolve
		// this actor sends (render.mergedResolve), with the merge commit as its result.
		commit := &activitypub.Object{Type: activitypub.Types{activitypub.TypeCommit}, ASContext: activitypub.IRIRef(la.urls.ID)}
		commit.Hash = pr.MergeCommit
		by := &activitypub.Object{Type: activitypub.Types{activitypub.TypeResolve}, Actor: activitypub.IRIRef(la.urls.ID),
			Object: activitypub.IRIRef(id), Result: activitypub.ObjectRef(commit)}
		doc.ResolvedBy = activitypub.ObjectRef(by)
	}
	return doc, http.StatusOK, nil
}

// offeredTicket is the Ticket of a pull request this actor offered upstream as m: the
// Ticket of the Offer (pullRequestOffer), rendered from the pull request as it is now,
// so that its id dereferences to the object that was offered.
func (f *federation) offeredTicket(la *localActor, pr forge.PullRequest, m store.OfferedMergeRequest) (*activitypub.Object, *activitypub.Object) {
	ev := &forge.Event{Kind: forge.KindMergeRequest, Number: pr.Number, Title: pr.Title, Body: pr.Body, URL: pr.URL,
		SourceBranch: pr.Head.Name, Branch: pr.Base.Name, Actor: forge.Person{Username: pr.AuthorLogin, URL: pr.AuthorURL},
		Repository: forge.Repository{FullName: pr.Base.RepoFullName, WebURL: pr.Base.RepoURL}}
	if m.Head != "" {
		ev.SourceBranch = m.Head
	}
	if m.Base != "" {
		ev.Branch = m.Base
	}
	t := pullRequestOffer(la, ev, m.UpstreamID, m.OfferID, pr.Created).Object.Object
	offer := t.Attachment[0].Object
	t.Attachment = nil
	return t, offer
}

// forgeBranch is a Branch of a pull request in this actor's forge: in this actor's
// repository when it is the base's, else in the repository that holds it (a fork in
// the same forge, named by its page: it has no actor).
func forgeBranch(la *localActor, b, base forge.PullBranch) *activitypub.Object {
	context := la.urls.ID
	if b.RepoFullName != "" && b.RepoFullName != base.RepoFullName {
		context = render.CleanURL(b.RepoURL)
	}
	return branchObject(context, b.Name)
}

// branchObject is a ForgeFed Branch of repository context named name.
func branchObject(context, name string) *activitypub.Object {
	b := &activitypub.Object{Type: activitypub.Types{activitypub.TypeBranch}, Name: name}
	if context != "" {
		b.ASContext = activitypub.IRIRef(context)
	}
	if name != "" {
		b.Ref = "refs/heads/" + name
	}
	return b
}

// forgetPull drops the cached pull request of a merge-request webhook event of actor, so
// that its Ticket shows a merge, close or edit at once. It runs for every authentic
// webhook event (recordForgeEvent).
func (f *federation) forgetPull(ctx context.Context, actor *fedv1.FederatedActor, ev *forge.Event) {
	if ev.Kind != forge.KindMergeRequest || ev.Number <= 0 || !readsPulls(actor) {
		return
	}
	base, err := f.base(ctx)
	if err != nil {
		return
	}
	f.tickets.forgetPull(urlsFor(base, actor).ID, ev.Number)
}
