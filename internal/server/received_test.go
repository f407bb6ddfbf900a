package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/keys"
	"github.com/fedforge/fedforge/internal/store"
)

func TestRecentActivities(t *testing.T) {
	tests := map[string]struct {
		// recorded is what the copy that gets the claim first reports.
		recorded bool
		// wantProcessed is how many of the copies get to process the activity.
		wantProcessed int
	}{
		"the first copy is recorded: the others are replays":         {recorded: true, wantProcessed: 1},
		"the first copy fails: the next one processes it, and so on": {recorded: false, wantProcessed: 16},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var r recentActivities
			ctx := context.Background()
			first, replay, err := r.claim(ctx, "https://p/a/1")
			if err != nil || replay || first == nil {
				t.Fatalf("first claim: %v, %v, %v", first, replay, err)
			}
			// 15 concurrent copies wait for the first; each one that gets a claim
			// reports the same outcome as the first.
			var processed, replays atomic.Int64
			processed.Add(1)
			var wg sync.WaitGroup
			started := make(chan struct{}, 15)
			for range 15 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					started <- struct{}{}
					c, replay, err := r.claim(ctx, "https://p/a/1")
					switch {
					case err != nil:
						t.Error(err)
					case replay:
						replays.Add(1)
					default:
						processed.Add(1)
						c.finish(tc.recorded)
					}
				}()
			}
			for range 15 {
				<-started
			}
			first.finish(tc.recorded)
			wg.Wait()
			if got := int(processed.Load()); got != tc.wantProcessed {
				t.Errorf("%d copies processed the activity, want %d", got, tc.wantProcessed)
			}
			if got := int(replays.Load()); got != 16-tc.wantProcessed {
				t.Errorf("%d copies were answered as replays, want %d", got, 16-tc.wantProcessed)
			}
			if _, replay, _ := r.claim(ctx, "https://p/a/1"); replay != tc.recorded {
				t.Errorf("a later copy: replay %v, want %v", replay, tc.recorded)
			}
		})
	}
}

func TestRecentActivitiesWaitEndsWithTheRequest(t *testing.T) {
	var r recentActivities
	c, _, _ := r.claim(context.Background(), "https://p/a/1")
	defer c.finish(true)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, replay, err := r.claim(ctx, "https://p/a/1"); !errors.Is(err, context.Canceled) || replay {
		t.Errorf("waiting copy of a cancelled request: replay %v, %v; want context.Canceled", replay, err)
	}
}

func TestRecentActivitiesIsBounded(t *testing.T) {
	var r recentActivities
	ctx := context.Background()
	record := func(id string) {
		c, replay, err := r.claim(ctx, id)
		if err != nil || replay {
			t.Fatalf("claim %s: %v, %v", id, replay, err)
		}
		c.finish(true)
	}
	record("https://p/a/first")
	for i := range 2 * recentActivitiesPerGeneration {
		record(fmt.Sprintf("https://p/a/%d", i))
	}
	if n := len(r.cur) + len(r.old); n > 2*recentActivitiesPerGeneration {
		t.Errorf("%d ids remembered, more than two generations", n)
	}
	if _, replay, _ := r.claim(ctx, fmt.Sprintf("https://p/a/%d", 2*recentActivitiesPerGeneration-1)); !replay {
		t.Error("the newest id is forgotten")
	}
	c, replay, _ := r.claim(ctx, "https://p/a/first")
	if replay {
		t.Error("the oldest id is still remembered after two generations")
	} else {
		c.finish(true) // the store answers it from here on
	}
	if len(r.inflight) != 0 {
		t.Errorf("%d claims left in flight", len(r.inflight))
	}
}

// countingStore is the real store with RecordReceived counted, and its first call
// failing when failFirst is set: what the inbox does with the received log shows.
type countingStore struct {
	store.Store
	failFirst bool
	calls     atomic.Int64
}

func (s *countingStore) RecordReceived(ctx context.Context, r store.Received, recipients []string) (bool, error) {
	if s.calls.Add(1) == 1 && s.failFirst {
		return false, errors.New("the test fails the first write")
	}
	return s.Store.RecordReceived(ctx, r, recipients)
}

// TestInboxCopiesOfOneActivity: a peer retrying one activity sends copies with new
// signatures (a repeated signature is refused as a replay before the inbox looks at
// the activity). Copies that arrive together are processed and recorded once, and no
// copy is answered 202 unless the received log holds the activity.
func TestInboxCopiesOfOneActivity(t *testing.T) {
	cfg, _, scheme, ctx := startAPIServer(t, true)

	// The remote actor's key is known already (as after a first fetch), so that no
	// peer has to serve it.
	peer, err := keys.Generate()
	must(t, err)
	pem, err := keys.EncodePublic(peer.RSA.Public())
	must(t, err)
	const actor = "https://peer.example/users/alice"

	tests := map[string]struct {
		failFirst   bool
		want202     int
		wantRecords int64
	}{
		"all copies answered 202, recorded once":                          {want202: 16, wantRecords: 1},
		"the first write fails: that copy gets an error, another records": {failFirst: true, want202: 15, wantRecords: 2},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			real, err := store.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "fedforge.db"))
			must(t, err)
			t.Cleanup(func() { _ = real.Close() })
			st := &countingStore{Store: real, failFirst: tc.failFirst}
			_, hs := serveInboxOn(t, ctx, cfg, scheme, st, actor, string(pem))

			id := "https://peer.example/notes/1/activity"
			body := []byte(`{"@context":"https://www.w3.org/ns/activitystreams","id":"` + id + `","type":"Create","actor":"` + actor +
				`","to":["https://www.w3.org/ns/activitystreams#Public"],"object":{"id":"https://peer.example/notes/1","type":"Note","content":"hello"}}`)
			const copies = 16
			reqs := make([]*http.Request, copies)
			// One base time: read per copy, a second boundary crossed while signing would
			// give two copies the same Date and so the same signature, which the verifier
			// rightly refuses as a replayed signature (401).
			now := time.Now()
			for i := range reqs {
				r, err := http.NewRequest(http.MethodPost, hs.URL+"/inbox", bytes.NewReader(body))
				must(t, err)
				r.Host = testHost
				r.Header.Set("Content-Type", "application/activity+json")
				// A new Date makes a new signature, as a peer's retry would.
				must(t, activitypub.SignCavage(r, body, peer.RSA, actor+"#main-key", activitypub.CavageOptions{Now: now.Add(-time.Duration(i) * time.Second)}))
				reqs[i] = r
			}
			codes := make(chan int, copies)
			for _, r := range reqs {
				go func() {
					resp, err := http.DefaultClient.Do(r)
					if err != nil {
						codes <- 0
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					codes <- resp.StatusCode
				}()
			}
			n202 := 0
			for range copies {
				switch c := <-codes; c {
				case http.StatusAccepted:
					n202++
				case http.StatusInternalServerError:
				default:
					t.Errorf("a copy was answered %d", c)
				}
			}
			if n202 != tc.want202 {
				t.Errorf("%d copies answered 202, want %d", n202, tc.want202)
			}
			if got := st.calls.Load(); got != tc.wantRecords {
				t.Errorf("RecordReceived called %d times, want %d", got, tc.wantRecords)
			}
			if _, err := real.GetReceived(ctx, id); err != nil {
				t.Errorf("the activity is not in the received log: %v", err)
			}
		})
	}
}
