package render

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/forge"
	"github.com/fedforge/fedforge/internal/store"
)

// A push to a branch as a ForgeFed Push with a Note (moved from render.go).

// pushNoteContent is the short Note of a push for social followers.
func (r *renderer) pushNoteContent() string {
	ev := r.ev
	var b strings.Builder
	n := max(ev.TotalCommits, len(ev.Commits))
	noun := "commits"
	if n == 1 {
		noun = "commit"
	}
	b.WriteString("<p>")
	if who := ev.Actor.Display(); who != "" {
		b.WriteString(esc(who) + " pushed ")
	} else {
		b.WriteString("Pushed ")
	}
	b.WriteString(link(ev.URL, strconv.Itoa(n)+" "+noun) + " to " + r.repoLink() + " (" + esc(ev.Branch) + ")</p>")
	if len(ev.Commits) > 0 {
		// Newest first: what people want to see of a long push.
		var lines []string
		for i := len(ev.Commits) - 1; i >= 0 && len(lines) < maxNoteCommits; i-- {
			c := ev.Commits[i]
			lines = append(lines, link(c.URL, shortHash(c.ID))+" "+esc(truncateText(commitTitle(c.Message), 120)))
		}
		if rest := n - len(lines); rest > 0 {
			lines = append(lines, "… and "+strconv.Itoa(rest)+" more")
		}
		b.WriteString("<p>" + strings.Join(lines, "<br>") + "</p>")
	}
	b.WriteString(r.hashtagParagraph())
	return b.String()
}

// push builds the ForgeFed Push: the branch as target, the commits as an
// OrderedCollection of Commit objects, hashBefore/hashAfter, and the actor as the
// repository context. Mastodon ignores Push; forges that follow the actor read it.
func (r *renderer) push() (store.Activity, error) {
	ev := r.ev
	to, cc := r.address()
	to = append(to, r.pushUpstreams()...) // threads.go (issue 14)
	id := ActivityID(r.t.ActorID, ev.Identity)
	items := make(activitypub.Refs, 0, len(ev.Commits))
	for _, c := range ev.Commits {
		co := &activitypub.Object{Type: activitypub.Types{activitypub.TypeCommit}, Summary: commitTitle(c.Message)}
		co.Hash = c.ID
		if body := commitBody(c.Message); body != "" {
			co.Description = &activitypub.Content{Content: body, MediaType: string(forge.FormatPlain)}
		}
		if !c.Time.IsZero() {
			co.Committed = activitypub.Time{Time: c.Time}
		}
		if u := CleanURL(c.URL); u != "" {
			co.URL = activitypub.IRIRefs(u)
		}
		if name := c.Author.Display(); name != "" {
			co.AttributedTo = activitypub.Refs{activitypub.ObjectRef(&activitypub.Object{Type: activitypub.Types{activitypub.TypePerson}, Name: name})}
		}
		items = append(items, activitypub.ObjectRef(co))
	}
	total := max(ev.TotalCommits, len(items))
	commits := &activitypub.Object{Type: activitypub.Types{activitypub.TypeOrderedCollection}, TotalItems: &total, OrderedItems: items}
	branch := &activitypub.Object{Type: activitypub.Types{activitypub.TypeBranch}, Name: ev.Branch, ASContext: activitypub.IRIRef(r.t.ActorID)}
	branch.Ref = ev.Ref
	act := activitypub.NewActivity(activitypub.TypePush, id, r.t.ActorID, activitypub.ObjectRef(commits), to, cc)
	act.AttributedTo = activitypub.IRIRefs(r.t.ActorID)
	act.ASContext = activitypub.IRIRef(r.t.ActorID)
	act.Target = activitypub.ObjectRef(branch)
	act.HashBefore, act.HashAfter = ev.Before, ev.After
	act.Summary = r.pushNoteContent()
	act.Published = activitypub.Time{Time: r.published}
	if u := CleanURL(ev.URL); u != "" {
		act.URL = activitypub.IRIRefs(u)
	}
	raw, err := json.Marshal(act)
	if err != nil {
		return store.Activity{}, fmt.Errorf("render: encode push: %w", err)
	}
	return store.Activity{ID: id, ActorID: r.t.ActorID, Type: activitypub.TypePush, Visibility: r.storeVis,
		Published: r.published, Raw: raw}, nil
}

// commitTitle is the first line of a commit message; commitBody the rest.
func commitTitle(msg string) string {
	title, _, _ := strings.Cut(strings.TrimSpace(msg), "\n")
	return strings.TrimSpace(title)
}

func commitBody(msg string) string {
	_, body, _ := strings.Cut(strings.TrimSpace(msg), "\n")
	return strings.TrimSpace(body)
}

func shortHash(id string) string {
	if len(id) > 7 {
		return id[:7]
	}
	return id
}
