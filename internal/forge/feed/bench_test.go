package feed

import (
	"context"
	"github.com/fedforge/fedforge/internal/forge/forgetest"
	"testing"
	"time"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/store"
)

// Run with
//
//	go test ./internal/forge/feed/ -run '^$' -bench . -benchtime 1s -count 1

// memFeedStore is an in-memory FeedStore, so that the poll benchmarks measure the
// poller and not SQLite.
type memFeedStore struct {
	state store.FeedState
	seen  map[string]bool
}

func (m *memFeedStore) GetFeedState(context.Context, string) (store.FeedState, error) {
	return m.state, nil
}
func (m *memFeedStore) PutFeedState(_ context.Context, s store.FeedState) error {
	m.state = s
	return nil
}
func (m *memFeedStore) FilterUnseenFeedEntries(_ context.Context, _ string, ids []string) ([]string, error) {
	var out []string
	for _, id := range ids {
		if !m.seen[id] {
			out = append(out, id)
		}
	}
	return out, nil
}
func (m *memFeedStore) MarkFeedEntriesSeen(_ context.Context, _ string, ids []string, _ time.Time) ([]string, error) {
	for _, id := range ids {
		m.seen[id] = true
	}
	return ids, nil
}

// BenchmarkPoll: one poll of the real GitHub releases feed over loopback HTTP, when the
// server answers 304 and when it sends the feed again with nothing new (the common cases).
func BenchmarkPoll(b *testing.B) {
	for _, tc := range []struct {
		name   string
		honour bool
	}{{"not modified", true}, {"unchanged 200", false}} {
		b.Run(tc.name, func(b *testing.B) {
			srv := newFeedServer(b, string(forgetest.Read(b, "feeds/github_releases.atom")))
			srv.honour = tc.honour
			_, targets := feedActor(srv.URL + "/releases.atom")
			st := &memFeedStore{seen: map[string]bool{}}
			p, err := NewPoller(PollerConfig{
				Sources: func(context.Context) ([]FeedTarget, error) { return targets, nil },
				Store:   st, Fetcher: loopbackFetcher(),
				Publish: func(context.Context, *fedv1.FederatedActor, *fedv1.EventSource, []store.Activity) error { return nil },
				Base:    func(context.Context) (string, error) { return "https://fed.example", nil },
			})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := p.Poll(context.Background(), targets[0]); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				res, err := p.Poll(context.Background(), targets[0])
				if err != nil || len(res.Published) != 0 || res.NotModified != tc.honour {
					b.Fatalf("%+v %v", res, err)
				}
			}
		})
	}
}
