// Package render turns a forge.Event into the store.Activity values the server
// publishes: a Create of a Note that Mastodon shows, a ForgeFed Push, and their
// addressing for the source's visibility. It is the outbound ActivityPub side of a
// forge event, not any forge's dialect; every id is derived from the event's Identity,
// so that a forge's retry, or a restart of the poller, can never post twice.
package render

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fedforge/fedforge/internal/forge"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/store"
	"github.com/fedforge/fedforge/internal/urls"
)

// Target says who publishes an event and to whom, so that Render needs no Kubernetes
// objects and golden tests can pin every input.
type Target struct {
	// ActorID is the publishing actor's IRI (urls.ForActor(base, username).ID).
	ActorID string
	// Visibility is the source's audience; empty means Public, the CRD default.
	Visibility fedv1.Visibility
	// PushNote asks for a short Note for social followers besides the ForgeFed Push.
	PushNote bool
	// Now is used as the publication time when the forge did not date the event.
	Now time.Time
	// Topics are the forge topics the source selects (spec.sources[].topics); a
	// repository's post names those it carries (repository.go).
	Topics []string
	// Upstream, when set, carries a fork's events to the instance its pull requests
	// were offered to (issue 14, threads.go).
	Upstream *Upstream
}

// TargetFor builds the Target of a source of an actor on the server at base. A push
// also becomes a Note for Mastodon followers only when the source lists Push explicitly:
// an empty event list ("everything") must not turn every push into a post. A Repository
// actor is no exception: its followers on Mastodon see no ForgeFed Push at all, and
// issue 12 asks that a push reach them as a post too.
func TargetFor(base string, actor *fedv1.FederatedActor, src *fedv1.EventSource, now time.Time) Target {
	t := Target{ActorID: urls.ForActor(base, actor.Spec.PreferredUsername).ID, Now: now}
	if src != nil {
		t.Visibility = src.Visibility
		t.PushNote = slices.Contains(src.Events, string(forge.KindPush))
		t.Topics = src.Topics
	}
	return t
}

// Selected reports whether a source publishes events of kind k: all supported kinds
// when spec.sources[].events is empty (Comment and the closing and reopening of issues
// included, because they are the ticket discussion that phase 2 carries; Star too, which
// is counted and never posted), only the listed ones otherwise, except that a
// source that publishes releases does not publish tags. Forges announce the new tag of
// every release as a tag push of its own (Gitea and Forgejo a push of refs/tags/<tag>
// with no commits, fired before the release and delivered in any order; GitHub and
// GitLab alike), and that delivery cannot be told from a tag pushed alone, so the
// release is the one post; a project that tags without releasing selects Tag alone.
func Selected(src *fedv1.EventSource, k forge.Kind) bool {
	if k == forge.KindTag && selected(src, forge.KindRelease) {
		return false
	}
	return selected(src, k)
}

func selected(src *fedv1.EventSource, k forge.Kind) bool {
	return src == nil || len(src.Events) == 0 || slices.Contains(src.Events, string(k))
}

// ActivityID is the IRI of an activity of actorID derived from key, and ObjectID that
// of its object. Both live under the actor, so that the server can route them and
// peers see them on the actor's host; the hash makes them stable for the same key and
// opaque (a tag name may contain characters an IRI path should not).
func ActivityID(actorID, key string) string { return actorID + "/activities/" + HashKey(key) }

// ObjectID is the IRI of the object published with ActivityID(actorID, key).
func ObjectID(actorID, key string) string { return actorID + "/objects/" + HashKey(key) }

// HashKey is the digest ids are made of: 128 bits of SHA-256 in hex. The feed poller
// stores entry ids made with it, so it must not change.
func HashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:16])
}

// Render turns an event into the activities to publish: Create{Note} for releases, tags,
// merge requests and issues opened (a merged one also Resolves its Ticket); a ForgeFed
// Push for pushes, followed by a Create{Note} when t.PushNote is set; for the ticket
// discussion (threads.go) Create, Update or Delete of a comment's Note inReplyTo the
// Ticket, Resolve and Undo{Resolve} for closed and reopened, and for a fork an Add to
// the forks collection with a Create{Note}. Stars render nothing (ErrIgnoredEvent). Ids derive from ev.Identity only, so rendering the same event again
// (a forge retry) yields the same ids and Publish does not post twice.
func Render(ev *forge.Event, t Target) ([]store.Activity, error) {
	if ev == nil || ev.Identity == "" {
		return nil, errors.New("render: event without identity")
	}
	if t.ActorID == "" {
		return nil, errors.New("render: no actor")
	}
	r := newRenderer(ev, t)
	if ev.Headline != "" {
		// An activity feed's entry: the forge's own words say what it is.
		a, err := r.create(ev.Identity, r.headlineContent(), nil)
		if err != nil {
			return nil, err
		}
		return []store.Activity{a}, nil
	}
	switch ev.Kind {
	case forge.KindMergeRequest, forge.KindIssue:
		if ev.Action == forge.ActionLabeled {
			return nil, fmt.Errorf("%w: a label change is not posted", forge.ErrIgnoredEvent)
		}
		if ev.Action == forge.ActionClosed || ev.Action == forge.ActionReopened {
			return r.resolve()
		}
		a, err := r.create(ev.Identity, r.noteContent(), r.attachments())
		if err != nil {
			return nil, err
		}
		if ev.Action != forge.ActionMerged {
			return []store.Activity{a}, nil
		}
		res, err := r.mergedResolve()
		if err != nil {
			return nil, err
		}
		return []store.Activity{a, res}, nil
	case forge.KindRelease, forge.KindTag:
		a, err := r.create(ev.Identity, r.noteContent(), r.attachments())
		if err != nil {
			return nil, err
		}
		return []store.Activity{a}, nil
	case forge.KindRepository:
		a, err := r.create(ev.Identity, r.repositoryContent(), nil)
		if err != nil {
			return nil, err
		}
		return []store.Activity{a}, nil
	case forge.KindComment:
		return r.comment()
	case forge.KindFork:
		return r.fork()
	case forge.KindStar:
		// A star is counted (the Repository actor's likes), never posted: one post per
		// star would flood followers and invite star bots (docs/decisions.md).
		return nil, fmt.Errorf("%w: stars are counted, not posted", forge.ErrIgnoredEvent)
	case forge.KindPush:
		push, err := r.push()
		if err != nil {
			return nil, err
		}
		out := []store.Activity{push}
		if t.PushNote {
			note, err := r.create(ev.Identity+"|note", r.pushNoteContent(), nil)
			if err != nil {
				return nil, err
			}
			out = append(out, note)
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: kind %q", forge.ErrIgnoredEvent, ev.Kind)
}

// renderer holds what every rendering of one event shares.
type renderer struct {
	ev        *forge.Event
	t         Target
	actor     urls.Actor
	host      string // scheme://host of the actor, for hashtag links
	published time.Time
	apVis     activitypub.Visibility
	storeVis  store.Visibility
}

func newRenderer(ev *forge.Event, t Target) *renderer {
	r := &renderer{ev: ev, t: t, actor: urls.Actor{ID: t.ActorID}}
	if u, err := url.Parse(t.ActorID); err == nil {
		r.host = u.Scheme + "://" + u.Host
	}
	r.published = ev.Time
	if r.published.IsZero() {
		r.published = t.Now
	}
	r.published = r.published.UTC().Truncate(time.Second)
	switch t.Visibility {
	case fedv1.VisibilityUnlisted:
		r.apVis, r.storeVis = activitypub.Unlisted, store.Unlisted
	case fedv1.VisibilityFollowers:
		r.apVis, r.storeVis = activitypub.FollowersOnly, store.Followers
	default:
		r.apVis, r.storeVis = activitypub.Public, store.Public
	}
	return r
}

// address returns to and cc for the source's visibility: Public is to as:Public and cc
// followers, Unlisted the reverse, Followers to followers only (activitypub.Address).
func (r *renderer) address() (to, cc activitypub.Refs) {
	return activitypub.Address(r.apVis, r.actor.Followers())
}

// create wraps a Note in a Create; both carry the same addressing, and the Note is also
// stored on its own so that it dereferences at its id, as Mastodon requires.
func (r *renderer) create(key, content string, attachments activitypub.Refs) (store.Activity, error) {
	to, cc := r.address()
	note := &activitypub.Object{
		Context:      activitypub.ActivityContext(),
		ID:           ObjectID(r.t.ActorID, key),
		Type:         activitypub.Types{activitypub.TypeNote},
		AttributedTo: activitypub.IRIRefs(r.t.ActorID),
		Content:      content,
		Published:    activitypub.Time{Time: r.published},
		To:           to,
		Cc:           cc,
		Tag:          r.hashtags(),
		Attachment:   attachments,
	}
	if u := CleanURL(r.ev.URL); u != "" {
		note.URL = activitypub.IRIRefs(u)
	}
	if (r.ev.Kind == forge.KindIssue || r.ev.Kind == forge.KindMergeRequest) && r.ev.Number != 0 && r.ev.Headline == "" {
		// The post is about the Ticket: discussable from elsewhere, replies go to it.
		note.ASContext = activitypub.IRIRef(r.thread())
	}
	if r.ev.Body != "" && r.ev.Kind != forge.KindPush && r.ev.Kind != forge.KindFork {
		// The full notes ride along for peers that want them; Mastodon shows content.
		note.Source = &activitypub.Content{Content: truncateText(r.ev.Body, 16<<10), MediaType: string(r.ev.BodyFormat)}
	}
	act := activitypub.NewActivity(activitypub.TypeCreate, ActivityID(r.t.ActorID, key), r.t.ActorID, activitypub.Embed(note), to, cc)
	act.Published = note.Published
	rawAct, err := json.Marshal(act)
	if err != nil {
		return store.Activity{}, fmt.Errorf("render: encode create: %w", err)
	}
	rawNote, err := json.Marshal(note)
	if err != nil {
		return store.Activity{}, fmt.Errorf("render: encode note: %w", err)
	}
	return store.Activity{
		ID: act.ID, ActorID: r.t.ActorID, Type: activitypub.TypeCreate, ObjectID: note.ID,
		Visibility: r.storeVis, Published: r.published, Raw: rawAct,
		Object: &store.Object{ID: note.ID, ActorID: r.t.ActorID, Type: activitypub.TypeNote, Visibility: r.storeVis,
			Published: r.published, Updated: r.published, Raw: rawNote},
	}, nil
}

// hashtags are #release for releases and the project's name for everything, as
// Mastodon Hashtag tags (and matching links at the end of the content).
func (r *renderer) hashtags() activitypub.Refs {
	var out activitypub.Refs
	for _, name := range r.tagNames() {
		out = append(out, activitypub.ObjectRef(&activitypub.Object{
			Type: activitypub.Types{activitypub.TypeHashtag}, Href: r.tagHref(name), Name: "#" + name,
		}))
	}
	return out
}

func (r *renderer) tagNames() []string {
	if r.ev.Headline != "" {
		return nil // activity feeds span many projects; their entries are not release news
	}
	var names []string
	if r.ev.Kind == forge.KindRelease {
		names = append(names, "release")
	}
	names = append(names, r.topicTags()...)
	if n := hashtagName(r.ev.Repository.Name); n != "" && !strings.EqualFold(n, "release") &&
		!slices.ContainsFunc(names, func(o string) bool { return strings.EqualFold(o, n) }) {
		names = append(names, n)
	}
	return names
}

func (r *renderer) tagHref(name string) string {
	return r.host + "/tags/" + url.PathEscape(strings.ToLower(name))
}

func (r *renderer) hashtagParagraph() string {
	var links []string
	for _, name := range r.tagNames() {
		if !slices.Contains(r.inlineTags(), name) { // already in the sentence
			links = append(links, hashtagLink(r.tagHref(name), name))
		}
	}
	if len(links) == 0 {
		return ""
	}
	return "<p>" + strings.Join(links, " ") + "</p>"
}

// repoLink links the project by its full path.
func (r *renderer) repoLink() string {
	repo := r.ev.Repository
	return link(repo.WebURL, cmp.Or(repo.FullName, repo.Name))
}

// noteContent is the HTML of the Note of a release, tag, merge request or issue.
func (r *renderer) noteContent() string {
	ev := r.ev
	var b strings.Builder
	who := ev.Actor.Display()
	switch ev.Kind {
	case forge.KindRelease:
		name := strings.TrimSpace(cmp.Or(ev.Repository.Name, ev.Repository.FullName) + " " + ev.Version)
		b.WriteString("<p><strong>" + esc(name) + "</strong> released")
		if ev.Prerelease {
			b.WriteString(" (pre-release)")
		}
		if t := strings.TrimSpace(ev.Title); t != "" && t != ev.Version && t != name {
			b.WriteString(": " + esc(t))
		}
		b.WriteString("</p>")
		b.WriteString(excerptHTML(ev.Body, ev.BodyFormat, excerptLimit))
		if IsHTTPURL(ev.URL) {
			b.WriteString("<p>" + link(ev.URL, ev.URL) + "</p>")
		}
	case forge.KindTag:
		b.WriteString("<p>New tag <strong>" + esc(ev.Version) + "</strong> in " + r.repoLink())
		if who != "" {
			b.WriteString(", pushed by " + esc(who))
		}
		b.WriteString("</p>")
		if IsHTTPURL(ev.URL) {
			b.WriteString("<p>" + link(ev.URL, ev.URL) + "</p>")
		}
	case forge.KindMergeRequest, forge.KindIssue:
		noun, ref := "issue", "#"+strconv.FormatInt(ev.Number, 10)
		if ev.Kind == forge.KindMergeRequest {
			noun = "pull request"
			if ev.Forge == fedv1.SourceGitLab {
				noun, ref = "merge request", "!"+strconv.FormatInt(ev.Number, 10)
			}
		}
		b.WriteString("<p>")
		if who != "" {
			b.WriteString(esc(who) + " " + ev.Action + " " + noun)
		} else {
			b.WriteString(strings.ToUpper(noun[:1]) + noun[1:] + " " + ev.Action)
		}
		b.WriteString(" " + esc(ref) + " in " + r.repoLink() + ": " + link(ev.URL, ev.Title))
		if ev.Kind == forge.KindMergeRequest && ev.SourceBranch != "" && ev.Branch != "" {
			b.WriteString(" (" + esc(ev.SourceBranch) + " → " + esc(ev.Branch) + ")")
		}
		b.WriteString("</p>")
		if ev.Action == forge.ActionOpened {
			b.WriteString(excerptHTML(ev.Body, ev.BodyFormat, excerptLimit))
		}
	}
	b.WriteString(r.hashtagParagraph())
	return b.String()
}

// headlineContent is the Note of an activity feed's entry: its title as the forge wrote
// it (sanitised, so only the markup Mastodon keeps), an excerpt of its content, and its
// link when the title does not already carry it.
func (r *renderer) headlineContent() string {
	ev := r.ev
	var b strings.Builder
	b.WriteString("<p>" + collapseSpace(SanitizeHTML(ev.Headline)) + "</p>")
	b.WriteString(excerptHTML(ev.Body, ev.BodyFormat, excerptLimit))
	if u := CleanURL(ev.URL); u != "" && !strings.Contains(b.String(), `href="`+esc(u)+`"`) {
		b.WriteString("<p>" + link(u, u) + "</p>")
	}
	return b.String()
}

// maxNoteCommits is how many commits a push's Note lists before "and N more".
const maxNoteCommits = 5

// attachments carry ForgeFed data with a Note: the commit a release or tag points at,
// and a Ticket for issues and merge requests. They have no "url", which is what keeps
// Mastodon from taking them for media (it skips attachments without one).
func (r *renderer) attachments() activitypub.Refs {
	ev := r.ev
	switch ev.Kind {
	case forge.KindRelease, forge.KindTag:
		if ev.After == "" {
			return nil
		}
		c := &activitypub.Object{Type: activitypub.Types{activitypub.TypeCommit}}
		c.Hash = ev.After
		if len(ev.Commits) == 1 && ev.Commits[0].ID == ev.After {
			c.Summary = commitTitle(ev.Commits[0].Message)
			if !ev.Commits[0].Time.IsZero() {
				c.Committed = activitypub.Time{Time: ev.Commits[0].Time}
			}
		}
		return activitypub.Refs{activitypub.ObjectRef(c)}
	case forge.KindMergeRequest, forge.KindIssue:
		t := &activitypub.Object{ID: r.thread(), Type: activitypub.Types{activitypub.TypeTicket}, Name: ev.Title}
		resolved := ev.Action == forge.ActionMerged
		t.IsResolved = &resolved
		if ev.Body != "" {
			t.Source = &activitypub.Content{Content: truncateText(ev.Body, 16<<10), MediaType: string(ev.BodyFormat)}
		}
		return activitypub.Refs{activitypub.ObjectRef(t)}
	}
	return nil
}
