// Package feed is the forge adapter for sources that are polled rather than delivered:
// Atom, RSS and JSON feeds (a GitLab tags feed, a Gitea or GitHub releases feed). The
// poller fetches each Feed source on its interval through the outbound guard, turns new
// entries into forge.Events and publishes their renderings; it remembers validators and
// seen entries in the store, so a restart neither re-posts nor misses an entry. Feeds
// have no write side.
package feed

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/fedforge/fedforge/internal/forge"
	"github.com/fedforge/fedforge/internal/metrics"
	"github.com/fedforge/fedforge/internal/render"
	"html"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/mmcdole/gofeed"
	"github.com/prometheus/client_golang/prometheus"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/store"
)

// FeedStore is the part of store.Store the poller uses: validators and entry dedupe,
// kept in the server's store so that both survive restarts.
type FeedStore interface {
	GetFeedState(ctx context.Context, sourceID string) (store.FeedState, error)
	PutFeedState(ctx context.Context, s store.FeedState) error
	FilterUnseenFeedEntries(ctx context.Context, sourceID string, entryIDs []string) ([]string, error)
	MarkFeedEntriesSeen(ctx context.Context, sourceID string, entryIDs []string, at time.Time) ([]string, error)
}

// Clock is the poller's time source; tests inject one that they advance by hand so that
// hours of polling run in milliseconds.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// RealClock is the wall clock.
func RealClock() Clock { return realClock{} }

// FeedTarget is one feed source of one actor, as the poller's Sources function lists it.
type FeedTarget struct {
	Actor  *fedv1.FederatedActor
	Source *fedv1.EventSource
}

// PollerConfig wires a Poller. Sources, Store, Fetcher, Publish and Base are required.
type PollerConfig struct {
	// Sources lists the feed sources to poll (type Feed), read from the informer cache on
	// every tick so that added, changed and removed sources take effect without restart.
	Sources func(ctx context.Context) ([]FeedTarget, error)
	Store   FeedStore
	Fetcher FeedFetcher
	Publish render.PublishFunc
	Base    render.BaseFunc
	// Clock defaults to RealClock.
	Clock Clock
	Log   logr.Logger
	// Metrics registers fedforge_feed_polls_total and fedforge_feed_entries_total.
	Metrics prometheus.Registerer
	// Tick is how often sources are listed and due ones polled (default 30 s).
	Tick time.Duration
	// DefaultInterval applies to sources without spec.feed.interval (default 15 min,
	// the CRD default).
	DefaultInterval time.Duration
	// MaxPublishPerPoll caps how many new entries one poll publishes (default 5); older
	// new entries beyond it are marked seen without posting, so that a forge that
	// rewrites its feed ids cannot flood timelines.
	MaxPublishPerPoll int
}

// Poller polls Atom/RSS feeds and publishes their new entries as releases. It dedupes
// by entry id in the store (publish first, then mark seen, so a crash republishes the
// same ids, which Publish ignores, rather than losing an entry) and sends ETag and
// Last-Modified validators so that unchanged feeds cost a 304.
type Poller struct {
	cfg     PollerConfig
	polls   *prometheus.CounterVec
	entries *prometheus.CounterVec

	mu   sync.Mutex
	next map[string]time.Time // source id -> when it is due
}

// Results counted by the poller's metrics.
const (
	pollPublished   = "published"
	pollNotModified = "not_modified"
	pollUnchanged   = "unchanged"
	pollError       = "error"
	entryPublished  = "published"
	entrySkipped    = "skipped"
)

// NewPoller checks cfg, applies defaults and registers metrics.
func NewPoller(cfg PollerConfig) (*Poller, error) {
	if cfg.Sources == nil || cfg.Store == nil || cfg.Fetcher == nil || cfg.Publish == nil || cfg.Base == nil {
		return nil, errors.New("feed: poller needs Sources, Store, Fetcher, Publish and Base")
	}
	if cfg.Clock == nil {
		cfg.Clock = RealClock()
	}
	if cfg.Log.GetSink() == nil {
		cfg.Log = logr.Discard()
	}
	if cfg.Tick <= 0 {
		cfg.Tick = 30 * time.Second
	}
	if cfg.DefaultInterval <= 0 {
		cfg.DefaultInterval = 15 * time.Minute
	}
	if cfg.MaxPublishPerPoll <= 0 {
		cfg.MaxPublishPerPoll = 5
	}
	polls, err := metrics.RegisterCounter(cfg.Metrics, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fedforge_feed_polls_total",
		Help: "Feed polls by result (published, not_modified, unchanged, error).",
	}, []string{"result"}))
	if err != nil {
		return nil, err
	}
	entries, err := metrics.RegisterCounter(cfg.Metrics, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fedforge_feed_entries_total",
		Help: "New feed entries by result: published, or skipped (backlog of a new source, or over the per-poll cap).",
	}, []string{"result"}))
	if err != nil {
		return nil, err
	}
	return &Poller{cfg: cfg, polls: polls, entries: entries, next: map[string]time.Time{}}, nil
}

// Run polls due sources every Tick until ctx ends. Sources are polled one after the
// other: feeds are few and slow to change, and the server shares its cores.
func (p *Poller) Run(ctx context.Context) error {
	for {
		p.RunOnce(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-p.cfg.Clock.After(p.cfg.Tick):
		}
	}
}

// RunOnce lists the sources and polls those that are due. A source is due at its last
// poll (from the store, so a restart does not poll everything at once) plus its
// interval; a failed poll waits a full interval too, so a broken feed is not hammered.
func (p *Poller) RunOnce(ctx context.Context) {
	targets, err := p.cfg.Sources(ctx)
	if err != nil {
		p.cfg.Log.Error(err, "listing feed sources failed")
		return
	}
	seen := map[string]bool{}
	for _, ft := range targets {
		if ctx.Err() != nil {
			return
		}
		if ft.Actor == nil || ft.Source == nil || ft.Source.Type != fedv1.SourceFeed || ft.Source.Feed == nil {
			continue
		}
		id := FeedSourceID(ft.Actor, ft.Source)
		seen[id] = true
		now := p.cfg.Clock.Now()
		due, known := p.dueAt(id)
		if !known {
			st, err := p.cfg.Store.GetFeedState(ctx, id)
			if err != nil {
				p.cfg.Log.Error(err, "reading feed state failed", "source", id)
				continue
			}
			due = now
			if !st.PolledAt.IsZero() {
				due = st.PolledAt.Add(p.interval(ft.Source))
			}
		}
		if now.Before(due) {
			p.setDue(id, due)
			continue
		}
		p.setDue(id, now.Add(p.interval(ft.Source)))
		if _, err := p.Poll(ctx, ft); err != nil {
			p.cfg.Log.Error(err, "polling feed failed", "source", id, "url", ft.Source.Feed.URL)
		}
	}
	p.mu.Lock()
	for id := range p.next {
		if !seen[id] {
			delete(p.next, id)
		}
	}
	p.mu.Unlock()
}

func (p *Poller) dueAt(id string) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t, ok := p.next[id]
	return t, ok
}

func (p *Poller) setDue(id string, t time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.next[id] = t
}

func (p *Poller) interval(src *fedv1.EventSource) time.Duration {
	if src.Feed != nil && src.Feed.Interval != nil && src.Feed.Interval.Duration >= time.Minute {
		return src.Feed.Interval.Duration
	}
	return p.cfg.DefaultInterval
}

// FeedSourceID names a feed source in the store: namespace/actor/source plus a hash of
// the URL, so that pointing a source at another feed starts afresh (with the first-poll
// rule) instead of treating the other feed's whole history as new.
func FeedSourceID(actor *fedv1.FederatedActor, src *fedv1.EventSource) string {
	u := ""
	if src.Feed != nil {
		u = src.Feed.URL
	}
	sum := sha256.Sum256([]byte(u))
	return actor.Namespace + "/" + actor.Name + "/" + src.Name + "#" + hex.EncodeToString(sum[:6])
}

// PollResult says what one poll did, for tests and logs.
type PollResult struct {
	NotModified bool
	Published   []string // entry ids published, oldest first
	Skipped     []string // entry ids marked seen without publishing
}

// feedEntry is one feed item with the id and date the poller works with.
type feedEntry struct {
	id   string
	date time.Time
	item *gofeed.Item
}

// Poll fetches one feed and publishes its new entries. On the first poll of a source
// (no recorded poll in the store) only the newest entry is published and the others
// are marked seen: following a project must not flood followers' timelines with its
// history. Validators are stored only after publishing, so a crash in between refetches
// the feed rather than getting a 304 for entries never published.
func (p *Poller) Poll(ctx context.Context, ft FeedTarget) (PollResult, error) {
	var res PollResult
	src := ft.Source
	if src == nil || src.Feed == nil || ft.Actor == nil {
		return res, errors.New("feed: poll of a source without a feed")
	}
	id := FeedSourceID(ft.Actor, src)
	st, err := p.cfg.Store.GetFeedState(ctx, id)
	if err != nil {
		p.polls.WithLabelValues(pollError).Inc()
		return res, err
	}
	firstPoll := st.PolledAt.IsZero()
	resp, err := p.cfg.Fetcher.FetchFeed(ctx, src.Feed.URL, Validators{ETag: st.ETag, LastModified: st.LastModified})
	if err != nil {
		p.polls.WithLabelValues(pollError).Inc()
		return res, err
	}
	now := p.cfg.Clock.Now().UTC()
	if resp.NotModified {
		res.NotModified = true
		p.polls.WithLabelValues(pollNotModified).Inc()
		st.PolledAt = now
		return res, p.cfg.Store.PutFeedState(ctx, st)
	}
	feed, err := gofeed.NewParser().Parse(bytes.NewReader(resp.Body))
	if err != nil {
		p.polls.WithLabelValues(pollError).Inc()
		return res, fmt.Errorf("feed: parsing feed %s: %w", src.Feed.URL, err)
	}
	entries := feedEntries(feed)
	ids := make([]string, len(entries))
	for i, e := range entries {
		ids[i] = e.id
	}
	unseen, err := p.cfg.Store.FilterUnseenFeedEntries(ctx, id, ids)
	if err != nil {
		p.polls.WithLabelValues(pollError).Inc()
		return res, err
	}
	isNew := map[string]bool{}
	for _, u := range unseen {
		isNew[u] = true
	}
	var fresh []feedEntry // oldest first
	for _, e := range entries {
		if isNew[e.id] {
			fresh = append(fresh, e)
			isNew[e.id] = false // a duplicate id inside the feed counts once
		}
	}
	keep := p.cfg.MaxPublishPerPoll
	if firstPoll {
		keep = 1
	}
	if len(fresh) > keep {
		for _, e := range fresh[:len(fresh)-keep] {
			res.Skipped = append(res.Skipped, e.id)
		}
		fresh = fresh[len(fresh)-keep:]
	}
	if len(fresh) > 0 {
		base, err := p.cfg.Base(ctx)
		if err != nil {
			p.polls.WithLabelValues(pollError).Inc()
			return res, err
		}
		target := render.TargetFor(base, ft.Actor, src, now)
		for _, e := range fresh {
			acts, err := render.Render(feedEvent(feed, e, src), target)
			if err != nil {
				p.polls.WithLabelValues(pollError).Inc()
				return res, err
			}
			if err := p.cfg.Publish(ctx, ft.Actor, src, acts); err != nil {
				p.polls.WithLabelValues(pollError).Inc()
				return res, fmt.Errorf("feed: publishing feed entry %s: %w", e.id, err)
			}
			if _, err := p.cfg.Store.MarkFeedEntriesSeen(ctx, id, []string{e.id}, now); err != nil {
				p.polls.WithLabelValues(pollError).Inc()
				return res, err
			}
			res.Published = append(res.Published, e.id)
			p.entries.WithLabelValues(entryPublished).Inc()
		}
	}
	if len(res.Skipped) > 0 {
		if _, err := p.cfg.Store.MarkFeedEntriesSeen(ctx, id, res.Skipped, now); err != nil {
			p.polls.WithLabelValues(pollError).Inc()
			return res, err
		}
		p.entries.WithLabelValues(entrySkipped).Add(float64(len(res.Skipped)))
		p.cfg.Log.Info("feed entries marked seen without publishing", "source", id, "count", len(res.Skipped), "firstPoll", firstPoll)
	}
	st.ETag, st.LastModified, st.PolledAt = resp.ETag, resp.LastModified, now
	if err := p.cfg.Store.PutFeedState(ctx, st); err != nil {
		p.polls.WithLabelValues(pollError).Inc()
		return res, err
	}
	if len(res.Published) > 0 {
		p.polls.WithLabelValues(pollPublished).Inc()
	} else {
		p.polls.WithLabelValues(pollUnchanged).Inc()
	}
	return res, nil
}

// maxEntryID bounds the entry ids kept in the store; longer ones are hashed.
const maxEntryID = 512

// feedEntries returns the items of a feed with their ids, oldest first. Items are
// ordered by date when every item has one, and otherwise taken to be newest first, the
// order forges and nearly every feed use.
func feedEntries(feed *gofeed.Feed) []feedEntry {
	out := make([]feedEntry, 0, len(feed.Items))
	dated := true
	for _, it := range feed.Items {
		if it == nil {
			continue
		}
		e := feedEntry{id: entryID(it), item: it}
		switch {
		case it.PublishedParsed != nil:
			e.date = it.PublishedParsed.UTC()
		case it.UpdatedParsed != nil:
			e.date = it.UpdatedParsed.UTC()
		default:
			dated = false
		}
		out = append(out, e)
	}
	if dated {
		sort.SliceStable(out, func(i, j int) bool { return out[i].date.Before(out[j].date) })
	} else {
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
	}
	return out
}

// entryID is the stable id of a feed item: the Atom id or RSS guid, else its link, else
// a hash of its title and date.
func entryID(it *gofeed.Item) string {
	id := strings.TrimSpace(cmp.Or(it.GUID, it.Link))
	if id == "" {
		id = "sha256:" + render.HashKey(it.Title+"|"+it.Published+"|"+it.Updated)
	}
	if len(id) > maxEntryID {
		id = "sha256:" + render.HashKey(id)
	}
	return id
}

// feedEvent makes the event of one feed entry (classify.go says which kind). A release
// is a Release event as ever; any other entry, and a release whose title is a sentence
// with markup (activity feeds: "alice released <a>v1</a> at <a>o/r</a>"), carries the
// entry's title as its Headline, which rendering shows instead of "released". The
// project is read from the feed's link (github.com/o/r/releases, gitlab/-/tags,
// gitea/releases...), falling back to the feed's title.
func feedEvent(feed *gofeed.Feed, e feedEntry, src *fedv1.EventSource) *forge.Event {
	it := e.item
	title := strings.TrimSpace(it.Title)
	ev := &forge.Event{
		Forge: fedv1.SourceFeed, Kind: classify(it, isReleaseFeed(src.Feed.URL)), Action: forge.ActionPublished,
		Repository: feedRepository(feed), Title: title, Version: title,
		Body: cmp.Or(it.Content, it.Description), BodyFormat: forge.FormatHTML, Time: e.date,
		Identity: forge.Identity("feed", src.Feed.URL, e.id),
	}
	if plain := htmlToText(title); ev.Kind != forge.KindRelease || plain != title {
		// An entry without title or link still says something (HTML: the headline is
		// sanitised, not escaped, when rendered).
		ev.Headline, ev.Title, ev.Version = cmp.Or(title, html.EscapeString(render.CleanURL(it.Link)), "(untitled entry)"), plain, ""
	}
	ev.URL = render.CleanURL(it.Link)
	if len(it.Authors) > 0 && it.Authors[0] != nil {
		ev.Actor = forge.Person{Name: it.Authors[0].Name}
	}
	return ev
}

// feedLinkSuffixes are the release and tag listing paths of forges, stripped from a
// feed's link to find the project.
var feedLinkSuffixes = []string{"/-/releases", "/-/tags", "/releases", "/tags", ".atom", ".rss", ".xml"}

func feedRepository(feed *gofeed.Feed) forge.Repository {
	r := forge.Repository{Name: strings.TrimSpace(feed.Title)}
	u, err := url.Parse(feed.Link)
	if err != nil || u.Host == "" || !render.IsHTTPURL(feed.Link) {
		return r
	}
	path := strings.TrimRight(u.Path, "/")
	for changed := true; changed; {
		changed = false
		for _, s := range feedLinkSuffixes {
			if strings.HasSuffix(path, s) {
				path, changed = strings.TrimSuffix(path, s), true
			}
		}
	}
	path = strings.Trim(path, "/")
	if path == "" {
		return r
	}
	return forge.Repository{Name: forge.LastSegment(path), FullName: path, WebURL: u.Scheme + "://" + u.Host + "/" + path}
}
