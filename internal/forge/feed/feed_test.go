package feed

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"github.com/fedforge/fedforge/internal/forge/forgetest"
	"github.com/fedforge/fedforge/internal/render"
	"github.com/fedforge/fedforge/internal/render/rendertest"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mmcdole/gofeed"
	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/store"
)

// The two entries of testdata/feeds/github_releases.atom, oldest first.
const (
	feedOldID = "tag:github.com,2008:Repository/90976281/0.1.3"
	feedNewID = "tag:github.com,2008:Repository/90976281/v0.2.0"
)

// feedServer serves a feed over loopback HTTP the way forges do: with an ETag and a
// Last-Modified, answering 304 to a matching If-None-Match.
type feedServer struct {
	*httptest.Server
	mu          sync.Mutex
	body        string
	lastMod     string
	honour      bool // answer 304 to matching validators
	status      int  // non-zero: answer this status instead
	requests    map[string]int
	inm, ims    []string
	notModified int
}

func newFeedServer(t testing.TB, body string) *feedServer {
	t.Helper()
	fs := &feedServer{body: body, lastMod: "Sun, 19 Jan 2020 05:08:59 GMT", honour: true, requests: map[string]int{}}
	fs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fs.mu.Lock()
		defer fs.mu.Unlock()
		fs.requests[r.URL.Path]++
		fs.inm = append(fs.inm, r.Header.Get("If-None-Match"))
		fs.ims = append(fs.ims, r.Header.Get("If-Modified-Since"))
		if fs.status != 0 {
			http.Error(w, "broken", fs.status)
			return
		}
		sum := sha256.Sum256([]byte(fs.body))
		etag := `W/"` + hex.EncodeToString(sum[:8]) + `"`
		w.Header().Set("ETag", etag)
		w.Header().Set("Last-Modified", fs.lastMod)
		if fs.honour && r.Header.Get("If-None-Match") == etag {
			fs.notModified++
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Content-Type", "application/atom+xml; charset=utf-8")
		_, _ = w.Write([]byte(fs.body))
	}))
	t.Cleanup(fs.Close)
	return fs
}

func (fs *feedServer) set(body string) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.body = body
}

func (fs *feedServer) count(path string) int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.requests[path]
}

// oldFeedOnly is the real feed as it was before v0.2.0: the newest entry removed.
func oldFeedOnly(t *testing.T) string {
	full := string(forgetest.Read(t, "feeds/github_releases.atom"))
	start := strings.Index(full, "    <entry>")
	end := strings.Index(full, "    </entry>\n") + len("    </entry>\n")
	if start < 0 || end < start || !strings.Contains(full[start:end], feedNewID) {
		t.Fatal("testdata feed changed; update oldFeedOnly")
	}
	return full[:start] + full[end:]
}

// loopbackFetcher may reach the loopback test server, as local mode allows.
func loopbackFetcher() *HTTPFeedFetcher {
	guard := activitypub.NewClient(activitypub.ClientConfig{AllowHTTP: true,
		AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}})
	return NewFeedFetcher(guard, FeedFetcherConfig{AllowHTTP: true})
}

func feedActor(urls ...string) (*fedv1.FederatedActor, []FeedTarget) {
	a := &fedv1.FederatedActor{ObjectMeta: metav1.ObjectMeta{Namespace: "forge", Name: "feed-rs"},
		Spec: fedv1.FederatedActorSpec{PreferredUsername: "releases-demo", Type: fedv1.ActorService}}
	var targets []FeedTarget
	for i, u := range urls {
		a.Spec.Sources = append(a.Spec.Sources, fedv1.EventSource{Name: "feed" + string(rune('a'+i)), Type: fedv1.SourceFeed,
			Feed: &fedv1.FeedSource{URL: u}})
	}
	for i := range a.Spec.Sources {
		targets = append(targets, FeedTarget{Actor: a, Source: &a.Spec.Sources[i]})
	}
	return a, targets
}

// flakyStore fails MarkFeedEntriesSeen while failMark is set, standing in for a crash
// between publishing an entry and recording it.
type flakyStore struct {
	FeedStore
	failMark atomic.Bool
}

func (s *flakyStore) MarkFeedEntriesSeen(ctx context.Context, id string, ids []string, at time.Time) ([]string, error) {
	if s.failMark.Load() {
		return nil, errors.New("killed before marking")
	}
	return s.FeedStore.MarkFeedEntriesSeen(ctx, id, ids, at)
}

func newTestPoller(t *testing.T, st FeedStore, pub *rendertest.StorePublisher, clock Clock, targets []FeedTarget) *Poller {
	t.Helper()
	p, err := NewPoller(PollerConfig{
		Sources: func(context.Context) ([]FeedTarget, error) { return targets, nil },
		Store:   st, Fetcher: loopbackFetcher(), Publish: pub.Publish,
		Base:  func(context.Context) (string, error) { return "https://fed.example", nil },
		Clock: clock, Metrics: prometheus.NewRegistry(), Tick: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func publishedIDs(t *testing.T, pub *rendertest.StorePublisher) []string {
	t.Helper()
	var out []string
	for _, a := range pub.Acts {
		note, err := activitypub.DecodeObject(a.Object.Raw)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, note.URL.IDs()...)
	}
	return out
}

// TestPollerLifecycle follows one real feed through its life: the first poll publishes
// only the newest entry, an unchanged feed is a 304, a new release is published once,
// and a restart (new poller, same store) publishes nothing again.
func TestPollerLifecycle(t *testing.T) {
	ctx := context.Background()
	st := rendertest.OpenStore(t)
	pub := &rendertest.StorePublisher{St: st}
	srv := newFeedServer(t, string(forgetest.Read(t, "feeds/github_releases.atom")))
	_, targets := feedActor(srv.URL + "/feed-rs/feed-rs/releases.atom")
	clock := newFakeClock(rendertest.Now)
	p := newTestPoller(t, st, pub, clock, targets)

	// First poll of a new source: the newest entry only; the backlog is marked seen.
	res, err := p.Poll(ctx, targets[0])
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Published, []string{feedNewID}) || !slices.Equal(res.Skipped, []string{feedOldID}) {
		t.Fatalf("first poll published %v skipped %v", res.Published, res.Skipped)
	}
	if got := publishedIDs(t, pub); !slices.Equal(got, []string{"https://github.com/feed-rs/feed-rs/releases/tag/v0.2.0"}) {
		t.Fatalf("published %v", got)
	}
	rendertest.MastodonShows(t, pub.Acts[0].Raw, fedv1.VisibilityPublic)
	note, _ := activitypub.DecodeObject(pub.Acts[0].Object.Raw)
	for _, want := range []string{"<strong>feed-rs 0.2.0</strong> released", "<li>migrate to Rust 2018 edition</li>", "#<span>FeedRs</span>"} {
		if !strings.Contains(note.Content, want) {
			t.Errorf("content lacks %q:\n%s", want, note.Content)
		}
	}

	// Unchanged: validators are sent and the 304 publishes nothing.
	clock.Advance(15 * time.Minute)
	res, err = p.Poll(ctx, targets[0])
	if err != nil || !res.NotModified {
		t.Fatalf("second poll: %+v, %v", res, err)
	}
	if srv.inm[1] == "" || srv.ims[1] != srv.lastMod {
		t.Errorf("validators not sent: If-None-Match %q If-Modified-Since %q", srv.inm[1], srv.ims[1])
	}
	// A restart: a new poller on the same store; the server ignores validators this time,
	// so the dedupe in the store is what keeps the entry from being posted twice.
	srv.honour = false
	p2 := newTestPoller(t, st, pub, clock, targets)
	res, err = p2.Poll(ctx, targets[0])
	if err != nil || len(res.Published)+len(res.Skipped) != 0 {
		t.Fatalf("after restart: %+v, %v", res, err)
	}
	if pub.Created != 1 {
		t.Fatalf("%d activities stored, want 1", pub.Created)
	}
}

// TestRenderFeedGolden renders the newest entry of the real GitHub releases feed, as the
// poller does, for a source at the feed's real URL.
func TestRenderFeedGolden(t *testing.T) {
	feed, err := gofeed.NewParser().ParseString(string(forgetest.Read(t, "feeds/github_releases.atom")))
	if err != nil {
		t.Fatal(err)
	}
	entries := feedEntries(feed)
	if len(entries) != 2 || entries[0].id != feedOldID || entries[1].id != feedNewID {
		t.Fatalf("entries %+v, want oldest first", entries)
	}
	src := &fedv1.EventSource{Name: "releases", Type: fedv1.SourceFeed, Feed: &fedv1.FeedSource{URL: "https://github.com/feed-rs/feed-rs/releases.atom"}}
	ev := feedEvent(feed, entries[1], src)
	if ev.Repository.FullName != "feed-rs/feed-rs" || ev.Repository.WebURL != "https://github.com/feed-rs/feed-rs" || ev.Actor.Name != "markpritchard" {
		t.Errorf("feed event %+v", ev)
	}
	acts, err := render.Render(ev, render.Target{ActorID: rendertest.ActorID, Now: rendertest.Now})
	if err != nil {
		t.Fatal(err)
	}
	rendertest.CheckGolden(t, "feed_github_releases.json", rendertest.Golden(t, acts))
	rendertest.MastodonShows(t, acts[0].Raw, fedv1.VisibilityPublic)
}

// TestPollerNewEntry: a release added to a feed already polled is published, and only it.
func TestPollerNewEntry(t *testing.T) {
	ctx := context.Background()
	st := rendertest.OpenStore(t)
	pub := &rendertest.StorePublisher{St: st}
	srv := newFeedServer(t, oldFeedOnly(t))
	_, targets := feedActor(srv.URL + "/releases.atom")
	p := newTestPoller(t, st, pub, newFakeClock(rendertest.Now), targets)
	res, err := p.Poll(ctx, targets[0])
	if err != nil || !slices.Equal(res.Published, []string{feedOldID}) {
		t.Fatalf("first poll %+v, %v", res, err)
	}
	srv.set(string(forgetest.Read(t, "feeds/github_releases.atom")))
	res, err = p.Poll(ctx, targets[0])
	if err != nil || !slices.Equal(res.Published, []string{feedNewID}) || len(res.Skipped) != 0 {
		t.Fatalf("second poll %+v, %v", res, err)
	}
	if pub.Created != 2 {
		t.Fatalf("%d activities stored, want 2", pub.Created)
	}
}

// TestPollerCrashRepublishes: if the process dies after publishing an entry but before
// recording it, the next poll publishes it again with the same ids, which the store
// refuses: nothing lost, nothing doubled. A failed publish records nothing, not even
// the validators, so the next poll refetches instead of getting a 304.
func TestPollerCrashRepublishes(t *testing.T) {
	ctx := context.Background()
	st := rendertest.OpenStore(t)
	flaky := &flakyStore{FeedStore: st}
	pub := &rendertest.StorePublisher{St: st}
	srv := newFeedServer(t, string(forgetest.Read(t, "feeds/github_releases.atom")))
	_, targets := feedActor(srv.URL + "/releases.atom")
	p := newTestPoller(t, flaky, pub, newFakeClock(rendertest.Now), targets)

	pub.Fail = errors.New("store unavailable")
	if _, err := p.Poll(ctx, targets[0]); err == nil {
		t.Fatal("poll succeeded although publishing failed")
	}
	pub.Fail = nil
	flaky.failMark.Store(true)
	if _, err := p.Poll(ctx, targets[0]); err == nil {
		t.Fatal("poll succeeded although marking failed")
	}
	if srv.notModified != 0 {
		t.Fatal("validators were stored before the entries were recorded")
	}
	flaky.failMark.Store(false)
	res, err := newTestPoller(t, flaky, pub, newFakeClock(rendertest.Now), targets).Poll(ctx, targets[0])
	if err != nil || !slices.Equal(res.Published, []string{feedNewID}) {
		t.Fatalf("poll after the crash: %+v, %v", res, err)
	}
	if pub.Calls != 3 || pub.Created != 1 {
		t.Fatalf("publish calls %d, created %d; want 3 (failed, killed before marking, retried) and 1 activity", pub.Calls, pub.Created)
	}
	unseen, err := st.FilterUnseenFeedEntries(ctx, FeedSourceID(targets[0].Actor, targets[0].Source), []string{feedOldID, feedNewID})
	if err != nil || len(unseen) != 0 {
		t.Fatalf("entries still unseen: %v %v", unseen, err)
	}
}

// TestPollerCap: more new entries than MaxPublishPerPoll on a known source publishes the
// newest and marks the rest seen.
func TestPollerCap(t *testing.T) {
	ctx := context.Background()
	st := rendertest.OpenStore(t)
	pub := &rendertest.StorePublisher{St: st}
	srv := newFeedServer(t, `<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>empty</title></feed>`)
	_, targets := feedActor(srv.URL + "/releases.atom")
	p, err := NewPoller(PollerConfig{
		Sources: func(context.Context) ([]FeedTarget, error) { return targets, nil },
		Store:   st, Fetcher: loopbackFetcher(), Publish: pub.Publish,
		Base:  func(context.Context) (string, error) { return "https://fed.example", nil },
		Clock: newFakeClock(rendertest.Now), MaxPublishPerPoll: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := p.Poll(ctx, targets[0]); err != nil || len(res.Published) != 0 {
		t.Fatalf("empty feed: %+v %v", res, err)
	}
	srv.set(string(forgetest.Read(t, "feeds/github_releases.atom")))
	res, err := p.Poll(ctx, targets[0])
	if err != nil || !slices.Equal(res.Published, []string{feedNewID}) || !slices.Equal(res.Skipped, []string{feedOldID}) {
		t.Fatalf("capped poll %+v, %v", res, err)
	}
}

func TestPollerErrors(t *testing.T) {
	ctx := context.Background()
	tests := map[string]struct {
		status int
		body   string
	}{
		"server error": {http.StatusBadGateway, ""},
		"gone":         {http.StatusGone, ""},
		"not a feed":   {0, "<html><body>login</body></html>"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			st := rendertest.OpenStore(t)
			pub := &rendertest.StorePublisher{St: st}
			srv := newFeedServer(t, tc.body)
			srv.status = tc.status
			_, targets := feedActor(srv.URL + "/releases.atom")
			p := newTestPoller(t, st, pub, newFakeClock(rendertest.Now), targets)
			if _, err := p.Poll(ctx, targets[0]); err == nil {
				t.Fatal("no error")
			}
			state, _ := st.GetFeedState(ctx, FeedSourceID(targets[0].Actor, targets[0].Source))
			if !state.PolledAt.IsZero() || pub.Calls != 0 {
				t.Fatalf("failed poll recorded state %+v or published %d", state, pub.Calls)
			}
		})
	}
}

// TestFeedFetcherRefusesPrivateAddresses: without an allowance for loopback, the fetcher
// refuses to connect, whatever the URL says, the rule of every outbound request.
func TestFeedFetcherRefusesPrivateAddresses(t *testing.T) {
	srv := newFeedServer(t, string(forgetest.Read(t, "feeds/github_releases.atom")))
	strict := NewFeedFetcher(activitypub.NewClient(activitypub.ClientConfig{AllowHTTP: true}), FeedFetcherConfig{AllowHTTP: true})
	if _, err := strict.FetchFeed(context.Background(), srv.URL+"/releases.atom", Validators{}); err == nil {
		t.Fatal("loopback feed fetched without an allowance")
	}
	if srv.count("/releases.atom") != 0 {
		t.Fatal("the request reached the server")
	}
	noHTTP := NewFeedFetcher(activitypub.NewClient(activitypub.ClientConfig{}), FeedFetcherConfig{})
	if _, err := noHTTP.FetchFeed(context.Background(), srv.URL+"/releases.atom", Validators{}); err == nil {
		t.Fatal("plain http fetched without AllowHTTP")
	}
	if _, err := loopbackFetcher().FetchFeed(context.Background(), srv.URL+"/releases.atom", Validators{}); err != nil {
		t.Fatalf("allowed fetch: %v", err)
	}
}

// TestPollerRunHonoursIntervals drives Run with a fake clock for ten minutes: a source
// with a 1-minute interval is polled every tick, one with 5 minutes every fifth.
func TestPollerRunHonoursIntervals(t *testing.T) {
	st := rendertest.OpenStore(t)
	pub := &rendertest.StorePublisher{St: st}
	srv := newFeedServer(t, string(forgetest.Read(t, "feeds/github_releases.atom")))
	actor, targets := feedActor(srv.URL+"/fast.atom", srv.URL+"/slow.atom")
	actor.Spec.Sources[0].Feed.Interval = &metav1.Duration{Duration: time.Minute}
	actor.Spec.Sources[1].Feed.Interval = &metav1.Duration{Duration: 5 * time.Minute}
	clock := newFakeClock(rendertest.Now)
	p := newTestPoller(t, st, pub, clock, targets)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	for i := 1; i <= 10; i++ {
		clock.WaitForAfterCalls(t, i)
		clock.Advance(time.Minute)
	}
	clock.WaitForAfterCalls(t, 11)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if fast, slow := srv.count("/fast.atom"), srv.count("/slow.atom"); fast != 11 || slow != 3 {
		t.Fatalf("polled fast %d and slow %d times in 10 minutes; want 11 and 3", fast, slow)
	}
	// Both sources publish the same GitHub entry under their own identity (the feed URL
	// is part of it), once each.
	if pub.Created != 2 {
		t.Fatalf("%d activities stored, want 2", pub.Created)
	}
}

// TestPollerRestartKeepsSchedule: a restarted poller waits out the interval of a source
// polled just before, rather than polling everything at start.
func TestPollerRestartKeepsSchedule(t *testing.T) {
	st := rendertest.OpenStore(t)
	pub := &rendertest.StorePublisher{St: st}
	srv := newFeedServer(t, string(forgetest.Read(t, "feeds/github_releases.atom")))
	_, targets := feedActor(srv.URL + "/releases.atom")
	clock := newFakeClock(rendertest.Now)
	newTestPoller(t, st, pub, clock, targets).RunOnce(context.Background())
	clock.Advance(5 * time.Minute)
	p := newTestPoller(t, st, pub, clock, targets)
	p.RunOnce(context.Background())
	if n := srv.count("/releases.atom"); n != 1 {
		t.Fatalf("restart polled again after 5 of 15 minutes (%d requests)", n)
	}
	clock.Advance(10 * time.Minute)
	p.RunOnce(context.Background())
	if n := srv.count("/releases.atom"); n != 2 {
		t.Fatalf("%d requests after the interval, want 2", n)
	}
}

// fakeClock is a Clock that moves only when told to.
type fakeClock struct {
	mu         sync.Mutex
	now        time.Time
	waiters    []fakeWaiter
	afterCalls int
}

type fakeWaiter struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock(now time.Time) *fakeClock { return &fakeClock{now: now} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	c.waiters = append(c.waiters, fakeWaiter{at: c.now.Add(d), ch: ch})
	c.afterCalls++
	return ch
}

// Advance moves the clock and fires the waiters that are due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(c.now) {
			w.ch <- c.now
		} else {
			kept = append(kept, w)
		}
	}
	c.waiters = kept
}

// WaitForAfterCalls blocks until After was called n times in all.
func (c *fakeClock) WaitForAfterCalls(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		calls := c.afterCalls
		c.mu.Unlock()
		if calls >= n {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("After was not called %d times", n)
}

// The store the server opens satisfies the poller's FeedStore.
var _ FeedStore = store.Store(nil)

// TestFeedFetcherFollowsResolve: a feed at a host name reaches the address the server's
// --resolve mapping gives it (local mode, instances on 127.0.0.x), and the address is
// still checked after the mapping.
func TestFeedFetcherFollowsResolve(t *testing.T) {
	srv := newFeedServer(t, string(forgetest.Read(t, "feeds/github_releases.atom")))
	addr := strings.TrimPrefix(srv.URL, "http://")
	mapped := NewFeedFetcher(activitypub.NewClient(activitypub.ClientConfig{
		AllowHTTP: true, AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		Resolve: map[string]string{"forge.feed.test": addr},
	}), FeedFetcherConfig{AllowHTTP: true})
	if _, err := mapped.FetchFeed(context.Background(), "http://forge.feed.test/releases.atom", Validators{}); err != nil {
		t.Fatalf("fetch through the resolve mapping: %v", err)
	}
	refused := NewFeedFetcher(activitypub.NewClient(activitypub.ClientConfig{
		AllowHTTP: true, Resolve: map[string]string{"forge.feed.test": addr},
	}), FeedFetcherConfig{AllowHTTP: true})
	if _, err := refused.FetchFeed(context.Background(), "http://forge.feed.test/releases.atom", Validators{}); err == nil {
		t.Fatal("a mapping to loopback bypassed the address check")
	}
}
