package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/forge"
	"github.com/fedforge/fedforge/internal/forge/gitea"
	"github.com/fedforge/fedforge/internal/forgewrite"
	"github.com/fedforge/fedforge/internal/store"
)

// ticketing is the server's side of issue 13: which actors take tickets, the forge each
// writes to, the forge-write queue's executor and what follows a write (the Accept, the
// comment map), and a short cache of issues read to serve Tickets.
type ticketing struct {
	f       *federation
	secrets *secretCache
	hc      *http.Client
	exec    *forgewrite.Executor

	issues  sync.Map // issueKey -> cachedIssue
	flights singleflight.Group
	pulls   pullCache // merge_request_document.go
}

type issueKey struct {
	actor  string
	number int64
}

type cachedIssue struct {
	is  forge.Issue
	err error
	at  time.Time
}

// issueTTL is how long an issue read from the forge serves its Ticket: a GET storm on a
// Ticket costs one forge call per TTL, and an edit in the forge shows within it.
const issueTTL = 30 * time.Second

// issueCacheMax bounds the cache; it is emptied when full (entries are 30 s anyway).
const issueCacheMax = 10000

// newTicketing builds the ticket side and its executor.
func newTicketing(f *federation) (*ticketing, error) {
	t := &ticketing{f: f, secrets: &secretCache{f: f}, hc: forge.NewAPIClient(f.client, forge.APIClientConfig{})}
	exec, err := forgewrite.New(forgewrite.Config{
		Store: f.store, Target: t.target, Prepare: t.prepare, Done: t.done, Dead: t.dead, Git: t.git,
		// A merge request's mirror (up to mirrorTimeout) and pull request fit in one call.
		CallTimeout: mirrorTimeout + time.Minute, Lease: 2*(mirrorTimeout+time.Minute) + time.Minute,
		Now: f.now, Log: f.log.WithName("forge-writes"),
	})
	if err != nil {
		return nil, err
	}
	t.exec = exec
	return t, nil
}

// run works the forge-write queue on every replica once the caches are synced.
func (s *Server) runForgeWrites(ctx context.Context) error {
	if !s.cache.WaitForCacheSync(ctx) {
		return nil
	}
	return s.fed.tickets.exec.Run(ctx)
}

// takesTickets says whether an actor takes tickets, and why not. A Repository or
// TicketTracker with spec.forge on a forge Fedforge can write to does, unless
// spec.tickets.enabled is false (docs/forgefed.md).
func takesTickets(a *fedv1.FederatedActor) (bool, string) {
	switch {
	case a.Spec.Type != fedv1.ActorRepository && a.Spec.Type != fedv1.ActorTicketTracker:
		return false, "this actor is not a Repository or TicketTracker and takes no tickets"
	case a.Spec.Forge == nil:
		return false, "this actor fronts no forge project and takes no tickets"
	case a.Spec.Tickets != nil && a.Spec.Tickets.Enabled != nil && !*a.Spec.Tickets.Enabled:
		return false, "this actor takes no tickets"
	case a.Spec.Forge.Type != fedv1.ForgeGitea && a.Spec.Forge.Type != fedv1.ForgeForgejo:
		return false, "tickets cannot be written to " + string(a.Spec.Forge.Type) + " forges yet"
	}
	return true, ""
}

// writer builds the forge writer of an actor that takes tickets, with its token read
// through the server's short Secret cache.
func (t *ticketing) writer(ctx context.Context, la *localActor) (*gitea.Writer, forge.Repository, error) {
	if ok, why := takesTickets(la.obj); !ok {
		return nil, forge.Repository{}, forgewrite.Permanent(errors.New(why))
	}
	w, err := t.giteaClient(ctx, la)
	if err != nil {
		return nil, forge.Repository{}, err
	}
	return w, forge.Repository{FullName: la.obj.Spec.Forge.Project}, nil
}

// giteaClient builds the Gitea/Forgejo client of an actor's spec.forge, with its token
// read through the server's short Secret cache: the writer of tickets and merge requests
// and the reader of the pull requests served as Tickets (merge_request_document.go).
// A client that cannot be built from the spec is a permanent error; a token that cannot
// be read now is not.
func (t *ticketing) giteaClient(ctx context.Context, la *localActor) (*gitea.Writer, error) {
	spec := la.obj.Spec.Forge
	token, err := t.secrets.get(ctx, la.obj.Namespace, fedv1.SecretKeyReference{Name: spec.TokenSecretRef.Name, Key: tokenKey(spec.TokenSecretRef.Key)})
	if err != nil {
		return nil, fmt.Errorf("forge token of %s: %w", la.obj.Name, err)
	}
	typ := fedv1.SourceGitea
	if spec.Type == fedv1.ForgeForgejo {
		typ = fedv1.SourceForgejo
	}
	w, err := gitea.NewWriter(gitea.Access{Type: typ, URL: spec.URL, Project: spec.Project, Token: string(token),
		HTTPClient: t.hc, UserAgent: t.f.client.UserAgent()})
	if err != nil {
		return nil, forgewrite.Permanent(err)
	}
	return w, nil
}

func tokenKey(k string) string {
	if k == "" {
		return fedv1.DefaultForgeTokenKey
	}
	return k
}

// target implements forgewrite.Config.Target from the actor's current spec.
func (t *ticketing) target(ctx context.Context, actorID string) (forgewrite.Target, error) {
	la, err := t.f.actors.byIRI(ctx, actorID)
	if errors.Is(err, errNotLocal) {
		return forgewrite.Target{}, forgewrite.Permanent(fmt.Errorf("actor %s is not served here any more", actorID))
	} else if err != nil {
		return forgewrite.Target{}, err
	}
	w, repo, err := t.writer(ctx, la)
	if err != nil {
		return forgewrite.Target{}, err
	}
	return forgewrite.Target{Writer: w, Repo: repo}, nil
}

// prepare implements forgewrite.Config.Prepare: an edit or deletion learns its comment's
// forge id, which exists only once the comment's own write is done.
func (t *ticketing) prepare(ctx context.Context, _ store.ForgeWrite, op *forgewrite.Op) error {
	if op.Kind != forgewrite.KindEditComment && op.Kind != forgewrite.KindDeleteComment || op.CommentID != 0 {
		return nil
	}
	c, err := t.f.store.TicketCommentByNote(ctx, op.NoteID)
	if errors.Is(err, store.ErrNotFound) {
		return forgewrite.Permanent(fmt.Errorf("no comment was written for Note %s", op.NoteID))
	} else if err != nil {
		return err
	}
	if c.CommentID == 0 {
		return fmt.Errorf("the comment of Note %s is not written yet", op.NoteID)
	}
	op.CommentID = c.CommentID
	return nil
}

// done implements forgewrite.Config.Done: what follows a write once the forge answered.
// It is idempotent (a crash before the row is finished runs it again).
func (t *ticketing) done(ctx context.Context, w store.ForgeWrite, op forgewrite.Op, ref store.ForgeRef) error {
	f := t.f
	switch op.Kind {
	case forgewrite.KindIssue:
		la, err := f.actors.byIRI(ctx, w.ActorID)
		if err != nil {
			return err
		}
		if op.Origin.Mention {
			return t.mentionDone(ctx, la, op, ref) // mention_ticket.go
		}
		ticketID := la.urls.Ticket(ref.Number)
		if err := f.store.PutTicket(ctx, store.TicketRecord{ID: ticketID, ActorID: la.urls.ID, Number: ref.Number,
			AuthorID: op.Origin.ActorID, OfferID: op.Origin.ActivityID, ObjectID: op.Origin.ObjectID}); err != nil {
			return err
		}
		if err := t.participate(ctx, ticketID, op.Origin.ActorID, op.Origin.Inbox); err != nil {
			return err
		}
		t.forget(la.urls.ID, ref.Number)
		accept := offerAnswer("Accept", la.urls.ID, op.Origin.ActivityID, op.Origin.ActorID, "")
		accept.Result = iriRef(ticketID)
		return f.publish(ctx, la, accept, store.Direct, []Recipient{{Inbox: op.Origin.Inbox}})
	case forgewrite.KindComment:
		return f.store.PutTicketComment(ctx, store.TicketComment{NoteID: op.NoteID, TicketID: op.Origin.TicketID,
			CommentID: ref.ID, AuthorID: op.Origin.ActorID})
	case forgewrite.KindDeleteComment:
		return f.store.MarkTicketCommentDeleted(ctx, op.NoteID)
	case forgewrite.KindMergeRequest, forgewrite.KindMergeRequestUpdate:
		return t.mergeRequestDone(ctx, w, op, ref)
	}
	return nil
}

// dead implements forgewrite.Config.Dead: a Warning Event on the actor, and a Reject to
// whoever offered a ticket the forge would not take.
func (t *ticketing) dead(ctx context.Context, w store.ForgeWrite, op forgewrite.Op, reason string) {
	f := t.f
	if op.Kind == forgewrite.KindMergeRequest || op.Kind == forgewrite.KindMergeRequestUpdate {
		t.mergeRequestDead(ctx, w, op, reason)
		return
	}
	la, err := f.actors.byIRI(ctx, w.ActorID)
	if err != nil {
		return
	}
	if f.recorder != nil {
		f.recorder.Eventf(la.obj, nil, corev1.EventTypeWarning, "ForgeWriteFailed", "ForgeWrite",
			"Writing %s %s into %s was given up: %s", op.Kind, w.Key, la.obj.Spec.Forge.URL, truncate(reason, 500))
	}
	if op.Kind == forgewrite.KindIssue && op.Origin.Mention {
		t.mentionRefused(ctx, la, op, "the forge did not take the issue: "+truncate(reason, 300))
	} else if op.Kind == forgewrite.KindIssue && op.Origin.Inbox != "" {
		rej := offerAnswer("Reject", la.urls.ID, op.Origin.ActivityID, op.Origin.ActorID, "The forge did not take the ticket: "+truncate(reason, 300))
		if err := f.publish(ctx, la, rej, store.Direct, []Recipient{{Inbox: op.Origin.Inbox}}); err != nil {
			f.log.Info("rejecting an offer after a failed write failed", "offer", op.Origin.ActivityID, "error", err.Error())
		}
	}
}

// participate records a remote actor as a participant of a ticket, with its inboxes.
func (t *ticketing) participate(ctx context.Context, ticketID, actorID, inbox string) error {
	p := store.TicketParticipant{ActorID: actorID, Inbox: inbox}
	if ra, err := t.f.store.GetRemoteActor(ctx, actorID); err == nil && !ra.Negative {
		p.Inbox, p.SharedInbox = ra.Inbox, ra.SharedInbox
	}
	if p.Inbox == "" {
		return nil
	}
	return t.f.store.AddTicketParticipant(ctx, ticketID, p)
}

// queue puts a write into the store and wakes the executor. A replayed activity finds
// its row and queues nothing.
func (t *ticketing) queue(ctx context.Context, actorID string, op forgewrite.Op) error {
	row, err := forgewrite.Row(actorID, op)
	if err != nil {
		return err
	}
	if _, created, err := t.f.store.EnqueueForgeWrite(ctx, row, t.f.now()); err != nil {
		return err
	} else if created {
		t.exec.Kick()
	}
	return nil
}

// issue reads an issue through the cache; concurrent misses of one issue share a call.
func (t *ticketing) issue(ctx context.Context, la *localActor, number int64) (forge.Issue, error) {
	k := issueKey{la.urls.ID, number}
	if v, ok := t.issues.Load(k); ok && t.f.now().Sub(v.(cachedIssue).at) < issueTTL {
		c := v.(cachedIssue)
		return c.is, c.err
	}
	v, err, _ := t.flights.Do(la.urls.ID+"#"+strconv.FormatInt(number, 10), func() (any, error) {
		w, repo, err := t.writer(ctx, la)
		if err != nil {
			return forge.Issue{}, err
		}
		is, err := w.Issue(ctx, repo, number)
		if e, ok := forge.AsAPIError(err); err == nil || (ok && e.StatusCode == http.StatusNotFound) {
			// An answer is cached, a missing issue too; a forge that is down is not.
			n := 0
			t.issues.Range(func(any, any) bool { n++; return n < issueCacheMax })
			if n >= issueCacheMax {
				t.issues.Clear()
			}
			t.issues.Store(k, cachedIssue{is: is, err: err, at: t.f.now()})
		}
		return is, err
	})
	return v.(forge.Issue), err
}

// forget drops a cached issue (after Fedforge wrote it).
func (t *ticketing) forget(actorID string, number int64) { t.issues.Delete(issueKey{actorID, number}) }

// ticketOf parses the id of a Ticket (or of a comment under one) of a local actor: an
// issue, <actor>/issues/<n>[/comments/<id>], or a merge request,
// <actor>/merge-requests/<n>[/comments/<id>] (the forge numbers both in one sequence, and
// a comment on either is written through the same API). thread is the Ticket's own id.
func (f *federation) ticketOf(ctx context.Context, iri string) (la *localActor, number int64, thread string, ok bool) {
	for _, kind := range []string{"/issues/", "/merge-requests/"} {
		i := strings.Index(iri, kind)
		if i < 0 {
			continue
		}
		la, err := f.actors.byIRI(ctx, iri[:i])
		if err != nil {
			return nil, 0, "", false
		}
		rest := iri[i+len(kind):]
		num, tail, _ := strings.Cut(rest, "/")
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil || n <= 0 || strconv.FormatInt(n, 10) != num {
			return nil, 0, "", false
		}
		if tail != "" {
			id, ok := strings.CutPrefix(tail, "comments/")
			if c, err := strconv.ParseInt(id, 10, 64); !ok || err != nil || c <= 0 {
				return nil, 0, "", false
			}
		}
		return la, n, iri[:i+len(kind)] + num, true
	}
	return nil, 0, "", false
}

// validHTTPURL says u is an absolute http(s) URL.
func validHTTPURL(u string) bool {
	p, err := url.Parse(u)
	return err == nil && (p.Scheme == "http" || p.Scheme == "https") && p.Host != ""
}

// writeForgeWriteStatus writes the forge-write queue's summary to the FederationServer's
// status (with the delivery summary).
func (s *Server) writeForgeWriteStatus(ctx context.Context) error {
	st, err := s.opts.Store.ForgeWriteStats(ctx)
	if err != nil {
		return err
	}
	var fs fedv1.FederationServer
	if err := s.cache.Get(ctx, s.opts.Server, &fs); err != nil {
		return client.IgnoreNotFound(err)
	}
	want := &fedv1.ForgeWriteStatus{Pending: st.Pending, Retrying: st.Retrying, Dead: st.Dead}
	if !st.OldestPending.IsZero() {
		want.OldestPendingSince = &metav1.Time{Time: st.OldestPending.Truncate(time.Second)}
	}
	cur := fs.Status.ForgeWrites
	if cur == nil && st.Pending == 0 && st.Dead == 0 {
		return nil // a server that never wrote into a forge shows nothing
	}
	if cur != nil && cur.Pending == want.Pending && cur.Retrying == want.Retrying && cur.Dead == want.Dead &&
		(cur.OldestPendingSince == nil) == (want.OldestPendingSince == nil) &&
		(cur.OldestPendingSince == nil || cur.OldestPendingSince.Equal(want.OldestPendingSince)) {
		return nil
	}
	base := fs.DeepCopy()
	fs.Status.ForgeWrites = want
	return s.fed.kube.Status().Patch(ctx, &fs, client.MergeFrom(base))
}

// reportForgeWrites writes the forge-write summary on the elected replica every
// StatusInterval (default a minute), like the delivery summary.
func (s *Server) reportForgeWrites(ctx context.Context) error {
	if !s.cache.WaitForCacheSync(ctx) {
		return nil
	}
	every := s.opts.StatusInterval
	if every <= 0 {
		every = time.Minute
	}
	tk := time.NewTicker(every)
	defer tk.Stop()
	for {
		if err := s.writeForgeWriteStatus(ctx); err != nil && ctx.Err() == nil {
			s.fed.log.Info("writing the forge-write summary failed; retrying", "error", err.Error())
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tk.C:
		}
	}
}
