package app

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/forge/giteatest"
)

// TestLoadTicketOffers (issue 13's benchmark): Offer{Ticket}s from a loopback peer at 20/s
// into a Repository actor in front of a real Gitea on loopback; the time from each Offer
// POST to its signed Accept (whose result is the Ticket) arriving at the peer, and the
// forge API calls per inbound activity, counted by a proxy in front of Gitea; then replies
// to one Ticket at the same rate, and the calls per reply. Only with FEDFORGE_LOAD=1
// (hack/load-server.sh TestLoadTicketOffers); it reports figures and asserts that nothing
// was lost, never timings.
func TestLoadTicketOffers(t *testing.T) {
	loadOnly(t)
	const rate, seconds, replies = 20, 15, 100
	n := rate * seconds
	g := giteatest.Start(t)
	tp := newTicketPeer(t)
	p := newPair(t, tp.host+"="+tp.addr)
	tp.attach(p.alpha.listen)
	ctx := context.Background()
	repo := g.CreateRepo(t, "load")
	bot := g.CreateUser(t, "fedforge-bot", "read:repository", "write:issue")
	must(t, p.k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "alpha", Name: "forge-token"},
		StringData: map[string]string{"token": bot.Token}}))
	api := startAPICounter(t, g.URL)
	must(t, p.k8s.Create(ctx, &fedv1.FederatedActor{ObjectMeta: metav1.ObjectMeta{Namespace: "alpha", Name: "tracker"},
		Spec: fedv1.FederatedActorSpec{ServerRef: fedv1.LocalObjectReference{Name: "forge"}, Type: fedv1.ActorRepository, PreferredUsername: "tracker",
			Forge: &fedv1.ForgeAccess{Type: fedv1.ForgeGitea, URL: api.url, Project: repo.FullName, TokenSecretRef: fedv1.SecretKeyReference{Name: "forge-token"}}}}))
	waitServed(t, p.alpha, "tracker")
	tracker, alice := p.alpha.base()+"/actors/tracker", tp.actor("alice")

	// A warm-up Offer: the first one fetches alice's key and document, as the first
	// Offer from any peer does; the measured run is the steady state after it.
	offer := func(id, title string) map[string]any {
		return map[string]any{"@context": []string{activitypub.ActivityStreamsContext, activitypub.ForgeFedContext},
			"id": id, "type": "Offer", "actor": alice, "target": tracker, "to": []string{tracker},
			"object": map[string]any{"type": "Ticket", "attributedTo": alice, "name": title,
				"source": map[string]any{"content": "Steps to reproduce: run `make` on arm64.", "mediaType": "text/markdown"}}}
	}
	warm := "http://" + tp.host + "/offers/warm"
	if code, body := tp.send(t, p, "alice", offer(warm, "Warm-up")); code != http.StatusAccepted {
		t.Fatalf("warm-up Offer answered %d %s", code, body)
	}
	eventually(t, time.Minute, func() error {
		if len(tp.answers("Accept", warm)) == 0 {
			return fmt.Errorf("no Accept of the warm-up Offer")
		}
		return nil
	})
	api.reset()

	// run sends n activities at rate/s and returns when each POST was sent.
	run := func(n int, doc func(i int) map[string]any) []time.Time {
		sent := make([]time.Time, n)
		var wg sync.WaitGroup
		var failed atomic.Int64
		tick := time.NewTicker(time.Second / rate)
		defer tick.Stop()
		for i := range n {
			<-tick.C
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				sent[i] = time.Now()
				if code, body := tp.send(t, p, "alice", doc(i)); code != http.StatusAccepted {
					failed.Add(1)
					t.Logf("activity %d answered %d %s", i, code, body)
				}
			}(i)
		}
		wg.Wait()
		if failed.Load() > 0 {
			t.Fatalf("%d of %d activities were not accepted by the inbox", failed.Load(), n)
		}
		return sent
	}
	offerID := func(i int) string { return fmt.Sprintf("http://%s/offers/load-%d", tp.host, i) }
	start := time.Now()
	sent := run(n, func(i int) map[string]any { return offer(offerID(i), fmt.Sprintf("Load ticket %d", i)) })
	eventually(t, 5*time.Minute, func() error {
		got := 0
		for i := range n {
			if len(tp.answers("Accept", offerID(i))) > 0 {
				got++
			}
		}
		if got < n {
			return fmt.Errorf("%d of %d Accepts arrived", got, n)
		}
		return nil
	})
	wall := time.Since(start)
	accepted := map[string]time.Time{}
	tp.mu.Lock()
	for i, d := range tp.got {
		if d["type"] == "Accept" {
			if id, _ := d["object"].(string); id != "" {
				if _, seen := accepted[id]; !seen {
					accepted[id] = tp.at[i]
				}
			}
		}
	}
	tp.mu.Unlock()
	lat := make([]time.Duration, 0, n)
	for i := range n {
		lat = append(lat, accepted[offerID(i)].Sub(sent[i]))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	q := func(f float64) time.Duration { return lat[int(f*float64(len(lat)-1))].Round(time.Millisecond) }
	calls := api.issueCalls()
	posts := 0
	var took []time.Duration
	api.mu.Lock()
	for i, c := range api.calls {
		if strings.HasPrefix(c, "POST ") && strings.HasSuffix(c, "/issues") {
			posts++
			took = append(took, api.took[i])
		}
	}
	api.mu.Unlock()
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	var busy time.Duration
	for _, d := range took {
		busy += d
	}
	t.Logf("Offer -> issue in Gitea -> Accept delivered, %d Offers at %d/s (all sent in %s, all answered in %s): p50=%s p90=%s p99=%s max=%s",
		n, rate, sent[n-1].Sub(sent[0]).Round(time.Millisecond), wall.Round(time.Millisecond), q(0.5), q(0.9), q(0.99), q(1))
	t.Logf("forge API calls for %d Offers: %d on issues (%d POST /issues), %.2f per Offer", n, len(calls), posts, float64(len(calls))/float64(n))
	if len(took) > 0 {
		t.Logf("Gitea's answer to POST /issues: p50=%s p99=%s; %s of POSTs in %s of wall clock (%.1f in flight on average)",
			took[len(took)/2].Round(time.Millisecond), took[(len(took)-1)*99/100].Round(time.Millisecond), busy.Round(time.Millisecond),
			wall.Round(time.Millisecond), busy.Seconds()/wall.Seconds())
	}

	// Replies to the first load ticket: one comment each.
	api.reset()
	ticket := fmt.Sprintf("%s/issues/%d", tracker, 2) // #1 is the warm-up's
	noteID := func(i int) string { return fmt.Sprintf("http://%s/notes/load-%d", tp.host, i) }
	run(replies, func(i int) map[string]any {
		return map[string]any{"@context": activitypub.ActivityStreamsContext, "id": fmt.Sprintf("http://%s/creates/load-%d", tp.host, i),
			"type": "Create", "actor": alice, "to": []string{tracker}, "object": map[string]any{"id": noteID(i), "type": "Note",
				"attributedTo": alice, "inReplyTo": ticket, "content": fmt.Sprintf("<p>Reply %d</p>", i)}}
	})
	eventually(t, 5*time.Minute, func() error {
		if got := len(api.issueCalls()); got < replies {
			return fmt.Errorf("%d of %d comment writes", got, replies)
		}
		return nil
	})
	time.Sleep(2 * time.Second) // a retry would add calls: give it the time of the first backoff
	t.Logf("forge API calls for %d replies: %d on issues, %.2f per reply", replies, len(api.issueCalls()), float64(len(api.issueCalls()))/replies)
}
