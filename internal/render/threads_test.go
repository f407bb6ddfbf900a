package render_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/forge"
	"github.com/fedforge/fedforge/internal/forge/forgetest"
	"github.com/fedforge/fedforge/internal/render"
	"github.com/fedforge/fedforge/internal/render/rendertest"
	"github.com/fedforge/fedforge/internal/store"
	"github.com/fedforge/fedforge/internal/urls"
)

var actor = urls.Actor{ID: rendertest.ActorID}

func renderCase(t *testing.T, name string, vis fedv1.Visibility) []store.Activity {
	t.Helper()
	tc, ok := forgetest.Payloads[name]
	if !ok {
		t.Fatalf("no payload %q", name)
	}
	acts, err := render.Render(parseCase(t, tc), render.Target{ActorID: rendertest.ActorID, Visibility: vis, Now: rendertest.Now})
	if err != nil {
		t.Fatal(err)
	}
	return acts
}

func decode(t *testing.T, raw []byte) *activitypub.Object {
	t.Helper()
	o, err := activitypub.DecodeObject(raw)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func types(acts []store.Activity) []string {
	var out []string
	for _, a := range acts {
		out = append(out, a.Type)
	}
	return out
}

// TestRenderComment: a comment written in the forge is a Note of the Repository actor,
// inReplyTo and in the context of the Ticket, at urls.Comment(ticket, id), naming and
// linking the forge user and the comment; its edit is an Update and its deletion a
// Delete of the same Note id.
func TestRenderComment(t *testing.T) {
	ticket := actor.Ticket(1)
	noteID := urls.Comment(ticket, 1)

	created := renderCase(t, "gitea comment created", fedv1.VisibilityPublic)
	if !slices.Equal(types(created), []string{"Create"}) {
		t.Fatalf("rendered %v, want one Create", types(created))
	}
	rendertest.MastodonShows(t, created[0].Raw, fedv1.VisibilityPublic)
	note := decode(t, created[0].Raw).Object.Object
	if note.ID != noteID || created[0].ObjectID != noteID || created[0].Object.ID != noteID {
		t.Errorf("note id %s (row %s), want %s", note.ID, created[0].ObjectID, noteID)
	}
	if note.InReplyTo.ID() != ticket || note.ASContext.ID() != ticket {
		t.Errorf("inReplyTo %s context %s, want the Ticket %s", note.InReplyTo.ID(), note.ASContext.ID(), ticket)
	}
	for _, want := range []string{
		`<a href="http://127.0.0.1:33391/carol">carol</a>`,
		`<a href="http://127.0.0.1:33391/fedforge-admin/upstream/issues/1#issuecomment-1">issue #1</a>`,
		"<p>Same here, on <strong>arm64</strong>.</p>",
	} {
		if !strings.Contains(note.Content, want) {
			t.Errorf("content lacks %s:\n%s", want, note.Content)
		}
	}
	if !note.Cc.Contains(urls.ObjectFollowers(ticket)) || !note.Cc.Contains(actor.Followers()) {
		t.Errorf("cc %v, want the actor's and the Ticket's followers", note.Cc.IDs())
	}
	if len(note.Tag) != 0 {
		t.Errorf("a comment carries hashtags %v: every comment would land on the project's hashtag", note.Tag)
	}

	edited := renderCase(t, "gitea comment edited", fedv1.VisibilityPublic)
	up := decode(t, edited[0].Raw)
	if !up.Type.Has(activitypub.TypeUpdate) || up.Object.Object == nil || up.Object.Object.ID != noteID ||
		!strings.Contains(up.Object.Object.Content, "and amd64") || up.Object.Object.Updated.IsZero() {
		t.Errorf("edit rendered as %v of %+v, want Update of the Note %s with the new text and updated", up.Type, up.Object.Object, noteID)
	}
	if edited[0].ID == created[0].ID {
		t.Error("the Update has the Create's id")
	}

	deleted := renderCase(t, "gitea comment deleted", fedv1.VisibilityPublic)
	del := decode(t, deleted[0].Raw)
	if want := urls.Comment(ticket, 2); !del.Type.Has(activitypub.TypeDelete) || del.Object.ID() != want {
		t.Errorf("deletion rendered as %v of %s, want Delete of %s", del.Type, del.Object.ID(), want)
	}
	tomb := decode(t, deleted[0].Object.Raw)
	if !tomb.Type.Has(activitypub.TypeTombstone) || deleted[0].ObjectID != urls.Comment(ticket, 2) {
		t.Errorf("stored %v at %s, want a Tombstone at the Note's id", tomb.Type, deleted[0].ObjectID)
	}

	pr := renderCase(t, "gitea pull request comment", fedv1.VisibilityPublic)
	prNote := decode(t, pr[0].Raw).Object.Object
	if mr := actor.MergeRequest(2); prNote.InReplyTo.ID() != mr || prNote.ID != urls.Comment(mr, 7) || !strings.Contains(prNote.Content, "pull request #2") {
		t.Errorf("pull request comment %s inReplyTo %s, want a Note under %s", prNote.ID, prNote.InReplyTo.ID(), mr)
	}
}

// TestRenderCommentFollowersOnly: a followers-only source keeps the Ticket's followers
// beside its own, and nothing public.
func TestRenderCommentFollowersOnly(t *testing.T) {
	acts := renderCase(t, "gitea comment created", fedv1.VisibilityFollowers)
	doc := decode(t, acts[0].Raw)
	if doc.IsPublic() || !doc.To.Contains(urls.ObjectFollowers(actor.Ticket(1))) || !doc.To.Contains(actor.Followers()) {
		t.Errorf("to %v cc %v", doc.To.IDs(), doc.Cc.IDs())
	}
	rendertest.MastodonShows(t, acts[0].Raw, fedv1.VisibilityFollowers)
}

// TestRenderResolve: closing an issue or a pull request without merge is a Resolve of
// its Ticket, reopening an Undo of a Resolve of it; merging keeps its post and also
// Resolves the merge request.
func TestRenderResolve(t *testing.T) {
	tests := []struct {
		name, verb, ticket string
	}{
		{"gitea issue closed", activitypub.TypeResolve, actor.Ticket(1)},
		{"gitea pull request closed", activitypub.TypeResolve, actor.MergeRequest(2)},
		{"gitea issue reopened", activitypub.TypeUndo, actor.Ticket(1)},
		{"gitea pull request reopened", activitypub.TypeUndo, actor.MergeRequest(2)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			acts := renderCase(t, tc.name, fedv1.VisibilityPublic)
			if len(acts) != 1 {
				t.Fatalf("rendered %v, want one activity", types(acts))
			}
			doc := decode(t, acts[0].Raw)
			if !doc.Type.Has(tc.verb) || doc.Actor.ID() != rendertest.ActorID {
				t.Fatalf("rendered %v by %s, want %s by the actor", doc.Type, doc.Actor.ID(), tc.verb)
			}
			resolve := doc
			if tc.verb == activitypub.TypeUndo {
				resolve = doc.Object.Object
				if resolve == nil || !resolve.Type.Has(activitypub.TypeResolve) {
					t.Fatalf("Undo of %+v, want of a Resolve", doc.Object)
				}
			}
			if resolve.Object.ID() != tc.ticket {
				t.Errorf("resolves %s, want %s", resolve.Object.ID(), tc.ticket)
			}
			if !doc.Cc.Contains(urls.ObjectFollowers(tc.ticket)) {
				t.Errorf("cc %v lacks the Ticket's followers", doc.Cc.IDs())
			}
		})
	}
	merged := renderCase(t, "gitea pull request merged", fedv1.VisibilityPublic)
	if !slices.Equal(types(merged), []string{"Create", "Resolve"}) {
		t.Fatalf("merge rendered %v, want the post and a Resolve", types(merged))
	}
	res := decode(t, merged[1].Raw)
	if got := res.Object.ID(); got != actor.MergeRequest(1) {
		t.Errorf("merge resolves %s", got)
	}
	// The result is the merge commit Gitea reports (merge_commit_sha), as a Commit.
	if c := res.Result.Object; c == nil || !c.Type.Has(activitypub.TypeCommit) || c.Hash != "f2440f050054df0f8ecabcace648f1683509064c" {
		t.Errorf("merged Resolve result = %+v, want the Commit f2440f0…", res.Result)
	}
	if !res.Cc.Contains(urls.ObjectFollowers(actor.MergeRequest(1))) {
		t.Errorf("merged Resolve cc %v lacks the merge request's followers (its participants)", res.Cc.IDs())
	}
}

// TestRenderOpenedIsTicket: the post of an issue opened in the forge names its Ticket
// (context, and the Ticket attachment's id), so that it can be discussed from elsewhere.
func TestRenderOpenedIsTicket(t *testing.T) {
	acts := renderCase(t, "gitea issue opened", fedv1.VisibilityPublic)
	note := decode(t, acts[0].Raw).Object.Object
	ticket := actor.Ticket(1)
	if note.ASContext.ID() != ticket || len(note.Attachment) != 1 || note.Attachment[0].Object.ID != ticket {
		t.Errorf("context %s attachment %+v, want the Ticket %s", note.ASContext.ID(), note.Attachment, ticket)
	}
}

// TestRenderFork: a fork is an Add of the new Repository (forkedFrom the actor) to the
// actor's forks collection, and a post naming who forked into where.
func TestRenderFork(t *testing.T) {
	acts := renderCase(t, "gitea fork", fedv1.VisibilityPublic)
	if !slices.Equal(types(acts), []string{"Add", "Create"}) {
		t.Fatalf("rendered %v, want Add and Create", types(acts))
	}
	add := decode(t, acts[0].Raw)
	repo := add.Object.Object
	if add.Target.ID() != render.Forks(rendertest.ActorID) || repo == nil || !repo.Type.Has(activitypub.TypeRepository) ||
		repo.ID != "http://127.0.0.1:33391/carol/upstream" || repo.ForkedFrom.ID() != rendertest.ActorID {
		t.Errorf("Add %+v of %+v", add, repo)
	}
	rendertest.MastodonShows(t, acts[1].Raw, fedv1.VisibilityPublic)
	note := decode(t, acts[1].Raw).Object.Object
	if !strings.Contains(note.Content, "forked") || !strings.Contains(note.Content, `href="http://127.0.0.1:33391/carol/upstream"`) {
		t.Errorf("fork post %s", note.Content)
	}
}

// TestRenderStar: a star is never posted.
func TestRenderStar(t *testing.T) {
	_, err := render.Render(&forge.Event{Kind: forge.KindStar, Identity: forge.StarIdentity("a/b", "carol", forge.ActionCreated)}, render.Target{ActorID: rendertest.ActorID})
	if !errors.Is(err, forge.ErrIgnoredEvent) {
		t.Fatalf("star: %v, want ErrIgnoredEvent", err)
	}
}

// TestRenderUpstream (issue 14, fork side): a comment on a pull request offered upstream
// replies to the upstream's merge-request Ticket and is addressed to the upstream actor,
// its Note staying ours; a push to an offered branch is addressed to the upstream too;
// a label change is never posted.
func TestRenderUpstream(t *testing.T) {
	const upstream, ticket = "https://a.example/actors/project", "https://a.example/actors/project/merge-requests/7"
	ev := &forge.Event{Forge: fedv1.SourceGitea, Kind: forge.KindComment, Action: forge.ActionCreated, Number: 3, CommentID: 40,
		OnMergeRequest: true, Body: "Nit fixed.", BodyFormat: forge.FormatMarkdown, Identity: "comment|alice/project|3|40",
		Repository: forge.Repository{FullName: "alice/project", WebURL: "https://b.example/alice/project"}}
	tg := render.Target{ActorID: rendertest.ActorID, Now: rendertest.Now, Upstream: &render.Upstream{Ticket: ticket, Actor: upstream}}
	acts, err := render.Render(ev, tg)
	if err != nil {
		t.Fatal(err)
	}
	act := decode(t, acts[0].Raw)
	note := act.Object.Object
	if note.InReplyTo.ID() != ticket || note.ASContext.ID() != ticket || !slices.Contains(act.To.IDs(), upstream) ||
		note.ID != urls.Comment(actor.MergeRequest(3), 40) {
		t.Errorf("comment on an offered pull request = %s", acts[0].Raw)
	}
	// A comment on an issue, or without an upstream, stays in the local thread.
	ev.OnMergeRequest = false
	acts, _ = render.Render(ev, tg)
	if n := decode(t, acts[0].Raw).Object.Object; n.InReplyTo.ID() != actor.Ticket(3) {
		t.Errorf("a comment on an issue replies to %s", n.InReplyTo.ID())
	}

	push := &forge.Event{Forge: fedv1.SourceGitea, Kind: forge.KindPush, Action: forge.ActionPushed, Ref: "refs/heads/fix", Branch: "fix",
		After: "abc", Identity: "push|alice/project|fix|abc", Repository: ev.Repository}
	acts, err = render.Render(push, render.Target{ActorID: rendertest.ActorID, Now: rendertest.Now, Upstream: &render.Upstream{PushTo: []string{upstream}}})
	if err != nil {
		t.Fatal(err)
	}
	if p := decode(t, acts[0].Raw); !slices.Contains(p.To.IDs(), upstream) {
		t.Errorf("a push to an offered branch is not addressed to the upstream: %s", acts[0].Raw)
	}

	labelled := &forge.Event{Forge: fedv1.SourceGitea, Kind: forge.KindMergeRequest, Action: forge.ActionLabeled, Number: 3,
		Identity: "mr|alice/project|3|labeled", Repository: ev.Repository}
	if _, err := render.Render(labelled, render.Target{ActorID: rendertest.ActorID, Now: rendertest.Now}); !errors.Is(err, forge.ErrIgnoredEvent) {
		t.Errorf("a label change rendered: %v", err)
	}
}

// TestRenderOwnClose: the close or reopen of a merge request that Fedforge made on its
// submitter's word (Upstream.OwnClose) goes to the actor's followers, not to the Ticket's
// participants (the submitter among them): no echo of what it asked for.
func TestRenderOwnClose(t *testing.T) {
	for _, name := range []string{"gitea pull request closed", "gitea pull request reopened"} {
		tc := forgetest.Payloads[name]
		acts, err := render.Render(parseCase(t, tc), render.Target{ActorID: rendertest.ActorID, Now: rendertest.Now,
			Upstream: &render.Upstream{OwnClose: true}})
		if err != nil {
			t.Fatal(err)
		}
		doc := decode(t, acts[0].Raw)
		participants := urls.ObjectFollowers(actor.MergeRequest(2))
		if doc.To.Contains(participants) || doc.Cc.Contains(participants) || !doc.Cc.Contains(actor.Followers()) {
			t.Errorf("%s made on the submitter's word addressed to %v and %v; want the followers only", name, doc.To.IDs(), doc.Cc.IDs())
		}
	}
}
