package render

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/forge"
	"github.com/fedforge/fedforge/internal/store"
	"github.com/fedforge/fedforge/internal/urls"
)

// The outbound side of ticket discussions (issue 13): what people do in the forge's
// issues and merge requests goes back out as ForgeFed activities about the Ticket at
// urls.Actor.Ticket(n) (or MergeRequest(n)). Fedforge speaks for the forge, so every
// activity is the Repository actor's; the forge user who acted is named, with a link to
// their forge profile, in the content. docs/forgefed-outbound.md has the mapping.

// commentExcerptLimit is how much of a comment's text a Note shows: comments are the
// discussion itself, so they get more room than a release's excerpt; the whole text
// rides in source.
const commentExcerptLimit = 2000

// Upstream is where a fork's forge events also go when its pull requests were offered to
// a Repository actor on another instance (issue 14, docs/merge-requests.md): the server
// fills it from its records of offered pull requests before rendering.
type Upstream struct {
	// PushTo are the upstream actors with an open merge request from the pushed branch:
	// the Push is addressed to them too (contract step 4).
	PushTo []string
	// Ticket is the upstream's merge-request Ticket of the pull request a comment is on,
	// and Actor the upstream actor holding it: the comment's Note replies to that Ticket
	// and goes to that actor (contract step 3), not to the pull request's local thread.
	Ticket, Actor string
	// OwnClose says that a merge request's close or reopen was made by Fedforge itself
	// on the word of the actor that offered it (issue 14, upstream side): the Resolve
	// goes to the actor's followers only, not to the Ticket's participants, so that the
	// submitter is not told back what it asked for.
	OwnClose bool
}

// pushUpstreams are the upstream actors a Push is also addressed to.
func (r *renderer) pushUpstreams() activitypub.Refs {
	if r.t.Upstream == nil {
		return nil
	}
	return activitypub.IRIRefs(r.t.Upstream.PushTo...)
}

// upstreamThread is the upstream Ticket a comment on an offered pull request replies
// to, and the upstream actor; "" when the comment is not on one.
func (r *renderer) upstreamThread() (ticket, actor string) {
	if u := r.t.Upstream; u != nil && r.ev.Kind == forge.KindComment && r.ev.OnMergeRequest && u.Ticket != "" && u.Actor != "" {
		return u.Ticket, u.Actor
	}
	return "", ""
}

// thread is the IRI of the Ticket the event is about: the issue's, or the merge
// request's (GitLab numbers the two separately, so they never share a path).
func (r *renderer) thread() string {
	if r.ev.Kind == forge.KindMergeRequest || r.ev.OnMergeRequest {
		return r.actor.MergeRequest(r.ev.Number)
	}
	return r.actor.Ticket(r.ev.Number)
}

// threadAddress is the source's addressing with the Ticket's followers (its
// participants, urls.ObjectFollowers) beside the actor's followers, so that people who
// took part in the discussion from elsewhere hear of it even when they do not follow
// the repository.
func (r *renderer) threadAddress() (to, cc activitypub.Refs) {
	to, cc = r.address()
	participants := activitypub.IRIRef(urls.ObjectFollowers(r.thread()))
	if to.Contains(r.actor.Followers()) {
		return append(to, participants), cc
	}
	return to, append(cc, participants)
}

// threadRef is "issue #3", "pull request #3" or "merge request !3" (GitLab).
func (r *renderer) threadRef() string {
	n := strconv.FormatInt(r.ev.Number, 10)
	switch {
	case !(r.ev.Kind == forge.KindMergeRequest || r.ev.OnMergeRequest):
		return "issue #" + n
	case r.ev.Forge == fedv1.SourceGitLab:
		return "merge request !" + n
	}
	return "pull request #" + n
}

// who is the forge user, linked to their profile on the forge when the payload gives it.
func (r *renderer) who() string {
	name := r.ev.Actor.Display()
	if name == "" {
		return "Someone"
	}
	return link(r.ev.Actor.URL, name)
}

// comment renders a forge comment: created → Create{Note}, edited → Update{Note},
// deleted → Delete{Tombstone}. The Note's id is urls.Comment(ticket, forge comment id),
// the same for all three, so that peers apply the edit and the deletion to the Note
// they have; each activity's id derives from the event's identity.
func (r *renderer) comment() ([]store.Activity, error) {
	ev := r.ev
	if ev.Number == 0 || ev.CommentID == 0 {
		return nil, fmt.Errorf("render: comment without thread or id (%s)", ev.Identity)
	}
	thread := r.thread()
	noteID := urls.Comment(thread, ev.CommentID)
	to, cc := r.threadAddress()
	if ticket, actor := r.upstreamThread(); ticket != "" {
		// A comment on a pull request offered upstream: the Note stays ours (its id
		// under our thread) but replies to the upstream's Ticket, addressed to the
		// upstream actor beside the source's audience.
		thread = ticket
		to, cc = r.address()
		to = append(to, activitypub.IRIRef(actor))
	}
	if ev.Action == forge.ActionDeleted {
		tomb := &activitypub.Object{Context: activitypub.ActivityContext(), ID: noteID,
			Type: activitypub.Types{activitypub.TypeTombstone}, FormerType: activitypub.Types{activitypub.TypeNote},
			Deleted: activitypub.Time{Time: r.published}}
		return r.wrap(activitypub.TypeDelete, activitypub.IRIRef(noteID), tomb, to, cc)
	}
	var b strings.Builder
	verb := "commented on "
	if ev.Action == forge.ActionEdited {
		verb = "edited a comment on "
	}
	b.WriteString("<p>" + r.who() + " " + verb + link(ev.URL, r.threadRef()) + " in " + r.repoLink())
	if t := strings.TrimSpace(ev.Title); t != "" {
		b.WriteString(": " + esc(t))
	}
	b.WriteString("</p>")
	b.WriteString(excerptHTML(ev.Body, ev.BodyFormat, commentExcerptLimit))
	note := &activitypub.Object{
		Context:      activitypub.ActivityContext(),
		ID:           noteID,
		Type:         activitypub.Types{activitypub.TypeNote},
		AttributedTo: activitypub.IRIRefs(r.t.ActorID),
		Content:      b.String(),
		MediaType:    string(forge.FormatHTML),
		Published:    activitypub.Time{Time: r.published},
		InReplyTo:    activitypub.IRIRef(thread),
		ASContext:    activitypub.IRIRef(thread),
		To:           to,
		Cc:           cc,
	}
	if u := CleanURL(ev.URL); u != "" {
		note.URL = activitypub.IRIRefs(u)
	}
	if ev.Body != "" {
		note.Source = &activitypub.Content{Content: truncateText(ev.Body, 16<<10), MediaType: string(ev.BodyFormat)}
	}
	typ := activitypub.TypeCreate
	if ev.Action == forge.ActionEdited {
		typ = activitypub.TypeUpdate
		note.Updated = note.Published
	}
	return r.wrap(typ, activitypub.Embed(note), note, to, cc)
}

// resolve renders an issue or merge request closed without merge (Resolve of the
// Ticket, ForgeFed "Close") or reopened (Undo of a Resolve of it, ForgeFed "Reopen").
// Mastodon shows neither; the summary says in words what happened for readers that
// show summaries. The Undo embeds a Resolve without id: the one it undoes was named
// from a close time this delivery does not carry, and ForgeFed asks only that the
// Undo's object be a Resolve of the Ticket.
func (r *renderer) resolve() ([]store.Activity, error) {
	ev := r.ev
	if ev.Number == 0 {
		return nil, fmt.Errorf("render: %s without number (%s)", ev.Kind, ev.Identity)
	}
	thread := r.thread()
	to, cc := r.threadAddress()
	if r.t.Upstream != nil && r.t.Upstream.OwnClose {
		to, cc = r.address()
	}
	summary := "<p>" + r.who() + " " + ev.Action + " " + link(ev.URL, r.threadRef()) + " in " + r.repoLink()
	if t := strings.TrimSpace(ev.Title); t != "" {
		summary += ": " + esc(t)
	}
	summary += "</p>"
	res := activitypub.NewActivity(activitypub.TypeResolve, ActivityID(r.t.ActorID, ev.Identity), r.t.ActorID, activitypub.IRIRef(thread), to, cc)
	res.Summary, res.Published = summary, activitypub.Time{Time: r.published}
	if ev.Action != forge.ActionReopened {
		a, err := r.encode(res)
		return []store.Activity{a}, err
	}
	undone := &activitypub.Object{Type: activitypub.Types{activitypub.TypeResolve}, Actor: activitypub.IRIRef(r.t.ActorID), Object: activitypub.IRIRef(thread)}
	undo := activitypub.NewActivity(activitypub.TypeUndo, ActivityID(r.t.ActorID, ev.Identity), r.t.ActorID, activitypub.ObjectRef(undone), to, cc)
	undo.Summary, undo.Published = summary, activitypub.Time{Time: r.published}
	a, err := r.encode(undo)
	return []store.Activity{a}, err
}

// mergedResolve is the Resolve that accompanies the announcement of a merged merge
// request: ForgeFed marks a merged merge request resolved. Its result is the merge commit
// (a Commit with its hash) when the forge reports it, which tells the other side of a
// federated merge request it was merged, not closed (docs/merge-requests.md, step 5).
func (r *renderer) mergedResolve() (store.Activity, error) {
	to, cc := r.threadAddress()
	res := activitypub.NewActivity(activitypub.TypeResolve, ActivityID(r.t.ActorID, r.ev.Identity+"|resolve"), r.t.ActorID,
		activitypub.IRIRef(r.thread()), to, cc)
	res.Published = activitypub.Time{Time: r.published}
	if h := r.ev.MergeCommit; h != "" {
		commit := &activitypub.Object{Type: activitypub.Types{activitypub.TypeCommit}, ASContext: activitypub.IRIRef(r.t.ActorID)}
		commit.Hash = h
		res.Result = activitypub.ObjectRef(commit)
	}
	return r.encode(res)
}

// fork renders a fork made in the forge: an Add of the new Repository to the upstream
// actor's forks collection (ForgeFed: the upstream "updates its forks collection"; the
// fork is not an actor here, so it is described inline with forkedFrom and origin
// pointing back), and a Create{Note} that Mastodon followers see.
func (r *renderer) fork() ([]store.Activity, error) {
	ev := r.ev
	if ev.Fork.FullName == "" {
		return nil, fmt.Errorf("render: fork without the new repository (%s)", ev.Identity)
	}
	to, cc := r.address()
	repo := &activitypub.Object{Type: activitypub.Types{activitypub.TypeRepository}, Name: ev.Fork.FullName,
		Origin: activitypub.IRIRef(r.t.ActorID)}
	repo.ForkedFrom = activitypub.IRIRef(r.t.ActorID)
	if u := CleanURL(ev.Fork.WebURL); u != "" {
		repo.ID, repo.URL = u, activitypub.IRIRefs(u)
	}
	if u := CleanURL(ev.Fork.CloneURL); u != "" {
		repo.CloneURI = activitypub.IRIRefs(u)
	}
	add := activitypub.NewActivity(activitypub.TypeAdd, ActivityID(r.t.ActorID, ev.Identity), r.t.ActorID, activitypub.ObjectRef(repo), to, cc)
	add.Target = activitypub.IRIRef(Forks(r.t.ActorID))
	add.Published = activitypub.Time{Time: r.published}
	addAct, err := r.encode(add)
	if err != nil {
		return nil, err
	}
	content := "<p>" + r.who() + " forked " + r.repoLink() + " into " + link(ev.Fork.WebURL, ev.Fork.FullName) + "</p>" + r.hashtagParagraph()
	note, err := r.create(ev.Identity+"|note", content, nil)
	if err != nil {
		return nil, err
	}
	return []store.Activity{addAct, note}, nil
}

// Forks is the forks collection of a Repository actor (ForgeFed forks), the target of
// the Add that announces a fork.
func Forks(actorID string) string { return actorID + "/forks" }

// wrap builds an activity of typ around object and stores the object on its own (the
// Note of a Create or Update, the Tombstone of a Delete) so that it dereferences at its id.
func (r *renderer) wrap(typ string, object activitypub.Ref, stored *activitypub.Object, to, cc activitypub.Refs) ([]store.Activity, error) {
	act := activitypub.NewActivity(typ, ActivityID(r.t.ActorID, r.ev.Identity), r.t.ActorID, object, to, cc)
	act.Published = activitypub.Time{Time: r.published}
	a, err := r.encode(act)
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(stored)
	if err != nil {
		return nil, fmt.Errorf("render: encode %s: %w", stored.Type, err)
	}
	a.ObjectID = stored.ID
	a.Object = &store.Object{ID: stored.ID, ActorID: r.t.ActorID, Type: stored.Type[0], Visibility: r.storeVis,
		Published: r.published, Updated: r.published, Raw: raw}
	return []store.Activity{a}, nil
}

// encode turns an activity into its store row.
func (r *renderer) encode(act *activitypub.Object) (store.Activity, error) {
	raw, err := json.Marshal(act)
	if err != nil {
		return store.Activity{}, fmt.Errorf("render: encode %s: %w", act.Type, err)
	}
	return store.Activity{ID: act.ID, ActorID: r.t.ActorID, Type: act.Type[0],
		Visibility: r.storeVis, Published: r.published, Raw: raw}, nil
}
