package delivery

import (
	"context"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/keys"
	"github.com/fedforge/fedforge/internal/store"
)

// serveOrigin serves the test actor's document on origin.test, so that peers verify
// our signatures the way Mastodon does: fetch the keyId, check the owner, verify.
func serveOrigin(t *testing.T, f *fediverse) {
	pemKey, err := keys.EncodePublic(testPair(t).RSA.Public())
	if err != nil {
		t.Fatal(err)
	}
	actor := activitypub.NewActor(activitypub.ActorSpec{
		ID: testActorID, Types: []string{activitypub.TypeService}, PreferredUsername: "releases",
		Inbox: testActorID + "/inbox", RSAPublicKeyPEM: string(pemKey),
	})
	doc, err := actor.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/actors/releases" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/activity+json")
		_, _ = w.Write(doc)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	f.resolve["origin.test"] = ln.Addr().String()
}

func TestDeliversSignedPOSTsThatVerify(t *testing.T) {
	f := &fediverse{byName: map[string]*peer{}, resolve: map[string]string{}}
	serveOrigin(t, f)
	verifierClient := activitypub.NewClient(f.clientConfig())
	v := activitypub.NewVerifier(activitypub.NewKeyCache(verifierClient, nil, activitypub.KeyCacheConfig{}), 1000)
	g := newFediverse(t, 3, "sig.test", v)
	for k, a := range g.resolve {
		f.resolve[k] = a
	}
	f.peers, f.byName = g.peers, g.byName
	s, _ := newStore(t)
	c := newClock()
	e := newExecutor(t, s, f, c)
	to := []Recipient{
		{Inbox: "http://" + f.host(0) + "/users/a/inbox", SharedInbox: "http://" + f.host(0) + "/inbox"},
		{Inbox: "http://" + f.host(0) + "/users/b/inbox", SharedInbox: "http://" + f.host(0) + "/inbox"},
		{Inbox: "http://" + f.host(0) + "/users/c/inbox", SharedInbox: "http://" + f.host(0) + "/inbox"},
		{Inbox: "http://" + f.host(1) + "/users/d/inbox"},
		{Inbox: "http://" + f.host(1) + "/users/e/inbox"},
		{Inbox: "http://" + f.host(2) + "/users/f/inbox", SharedInbox: "http://" + f.host(2) + "/inbox"},
		{Inbox: "http://" + f.host(2) + "/users/f/inbox", SharedInbox: "http://" + f.host(2) + "/inbox"},
	}
	a := newActivity("signed", c.Now())
	if err := NewPublisher(s, e).Publish(context.Background(), a, to); err != nil {
		t.Fatal(err)
	}
	n, err := e.RunOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n != 4 {
		t.Fatalf("leased %d rows, want 4 (one per shared inbox, else per inbox)", n)
	}
	want := map[*peer]map[string]int{
		f.peers[0]: {"/inbox": 1},
		f.peers[1]: {"/users/d/inbox": 1, "/users/e/inbox": 1},
		f.peers[2]: {"/inbox": 1},
	}
	for p, paths := range want {
		for path, n := range paths {
			if got := p.count(a.ID, path); got != n {
				t.Errorf("%s%s got %d verified POSTs, want %d", p.name, path, got, n)
			}
		}
		if attempts, _, bad, _ := p.stats(); bad != 0 || attempts != len(paths) {
			t.Errorf("%s: %d requests, %d refused signatures", p.name, attempts, bad)
		}
	}
	if st := queueStats(t, s, c.Now()); st.Delivered != 4 || st.Pending != 0 {
		t.Fatalf("queue after delivery: %+v", st)
	}
}

func TestNeverResendsAfter2xx(t *testing.T) {
	f := newFediverse(t, 4, "once.test", nil)
	s, _ := newStore(t)
	c := newClock()
	e := newExecutor(t, s, f, c)
	f.peers[3].setMode(t, mode5xx)
	to := f.followers(12, false)
	a := newActivity("once", c.Now())
	pub := NewPublisher(s, e)
	if err := pub.Publish(context.Background(), a, to); err != nil {
		t.Fatal(err)
	}
	if _, err := e.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.peers[3].setMode(t, modeOK)
	// Republishing, re-enqueueing and running for days must not send anything again.
	if err := pub.Publish(context.Background(), a, to); err != nil {
		t.Fatal(err)
	}
	if n, err := s.EnqueueDeliveries(context.Background(), a.ID, Targets(to), c.Now()); err != nil || n != 0 {
		t.Fatalf("EnqueueDeliveries of delivered targets = %d, %v; want 0", n, err)
	}
	drain(t, e, s, c, 10*time.Minute, 200)
	for range 5 {
		c.Add(24 * time.Hour)
		if n, err := e.RunOnce(context.Background()); err != nil || n != 0 {
			t.Fatalf("RunOnce after everything was delivered leased %d rows (%v)", n, err)
		}
	}
	f.checkTargets(t, []string{a.ID}, to, true)
	for _, p := range f.peers[:3] {
		if attempts, _, _, _ := p.stats(); attempts != 3 {
			t.Errorf("%s got %d requests for its 3 inboxes", p.name, attempts)
		}
	}
}

func TestFailingHostRecovers(t *testing.T) {
	f := newFediverse(t, 3, "recover.test", nil)
	s, _ := newStore(t)
	c := newClock()
	e := newExecutor(t, s, f, c)
	down := f.peers[1]
	down.setMode(t, mode5xx)
	to := f.followers(30, false) // 10 inboxes per host
	pub := NewPublisher(s, e)
	var ids []string
	// Three activities published during a 36-hour outage (spanning two UTC days).
	for i := range 3 {
		a := newActivity("recover-"+string(rune('a'+i)), c.Now())
		ids = append(ids, a.ID)
		if err := pub.Publish(context.Background(), a, to); err != nil {
			t.Fatal(err)
		}
		for range 24 {
			if _, err := e.RunOnce(context.Background()); err != nil {
				t.Fatal(err)
			}
			c.Add(30 * time.Minute)
		}
	}
	attemptsDuringOutage, _, _, _ := down.stats()
	t.Logf("requests to the host while it was down: %d (30 rows, 72 rounds)", attemptsDuringOutage)
	st, _ := s.GetHostState(context.Background(), f.host(1))
	if st.FailureDays < 2 || st.Unavailable {
		t.Fatalf("host state after a 36 h outage: %+v", st)
	}
	if e.Breaker().State(f.host(1)) == Closed {
		t.Fatal("the breaker of a host down for 36 h is closed")
	}
	// 30 rows were due many times; the breaker must have held most attempts back.
	if attemptsDuringOutage > 150 {
		t.Fatalf("%d requests to a host that was down: the breaker did not hold them back", attemptsDuringOutage)
	}
	down.setMode(t, modeOK)
	drain(t, e, s, c, 15*time.Minute, 400)
	f.checkTargets(t, ids, to, true)
	qs := queueStats(t, s, c.Now())
	if qs.Dead != 0 || qs.Delivered != 90 {
		t.Fatalf("queue after recovery: %+v", qs)
	}
	if st, _ := s.GetHostState(context.Background(), f.host(1)); st.FailureDays != 0 || st.ConsecutiveFailures != 0 {
		t.Fatalf("host state after recovery: %+v", st)
	}
}

func TestUnavailableAfterSevenDaysAndBack(t *testing.T) {
	f := newFediverse(t, 2, "days.test", nil)
	s, _ := newStore(t)
	c := newClock()
	e := newExecutor(t, s, f, c)
	down := f.peers[0]
	down.setMode(t, mode5xx)
	to := f.followers(2, true)
	pub := NewPublisher(s, e)
	for day := range 8 {
		a := newActivity("day-"+string(rune('0'+day)), c.Now())
		if err := pub.Publish(context.Background(), a, to); err != nil {
			t.Fatal(err)
		}
		for range 12 {
			if _, err := e.RunOnce(context.Background()); err != nil {
				t.Fatal(err)
			}
			c.Add(2 * time.Hour)
		}
	}
	hs, err := s.ListUnavailableHosts(context.Background())
	if err != nil || len(hs) != 1 || hs[0].Host != f.host(0) || hs[0].FailureDays < DefaultUnavailableAfterDays {
		t.Fatalf("unavailable hosts after 8 failing days = %+v, %v", hs, err)
	}
	before, _, _, _ := down.stats()
	a := newActivity("while-unavailable", c.Now())
	if err := pub.Publish(context.Background(), a, to); err != nil {
		t.Fatal(err)
	}
	if _, err := e.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if after, _, _, _ := down.stats(); after != before {
		t.Fatalf("an unavailable host got %d requests", after-before)
	}
	if got := f.peers[1].count(a.ID, "/inbox"); got != 1 {
		t.Fatalf("the healthy host got the activity %d times", got)
	}
	// Heard from again (the inbox verified a request from it): it comes back.
	down.setMode(t, modeOK)
	if err := e.HeardFrom(context.Background(), f.host(0)); err != nil {
		t.Fatal(err)
	}
	if hs, _ := s.ListUnavailableHosts(context.Background()); len(hs) != 0 {
		t.Fatalf("still unavailable after being heard from: %+v", hs)
	}
	b := newActivity("back", c.Now())
	if err := pub.Publish(context.Background(), b, to); err != nil {
		t.Fatal(err)
	}
	if _, err := e.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := down.count(b.ID, "/inbox"); got != 1 {
		t.Fatalf("the host that came back got %d deliveries", got)
	}
}

func TestGonePermanentAndRetryAfter(t *testing.T) {
	f := newFediverse(t, 3, "status.test", nil)
	s, _ := newStore(t)
	c := newClock()
	var mu sync.Mutex
	var gone []store.Delivery
	e := newExecutor(t, s, f, c, func(cfg *Config) {
		cfg.OnGone = func(_ context.Context, d store.Delivery) { mu.Lock(); gone = append(gone, d); mu.Unlock() }
	})
	f.peers[0].setMode(t, modeGone)
	f.peers[1].setMode(t, modeBadRequest)
	f.peers[2].setMode(t, modeRateLimit)
	to := f.followers(3, false)
	if err := NewPublisher(s, e).Publish(context.Background(), newActivity("status", c.Now()), to); err != nil {
		t.Fatal(err)
	}
	if _, err := e.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(gone) != 1 || gone[0].Inbox != to[0].Inbox {
		t.Fatalf("OnGone got %+v, want the 410 inbox %s", gone, to[0].Inbox)
	}
	if st := queueStats(t, s, c.Now()); st.Dead != 2 || st.Pending != 1 || st.Retrying != 1 {
		t.Fatalf("queue after 410, 400, 429: %+v", st)
	}
	// Retry-After: 3600 holds the row for an hour, though the backoff says 30 s.
	c.Add(30 * time.Minute)
	if n, _ := e.RunOnce(context.Background()); n != 0 {
		t.Fatalf("a row answered Retry-After: 3600 was retried after 30 min")
	}
	c.Add(31 * time.Minute)
	f.peers[2].setMode(t, modeOK)
	if n, _ := e.RunOnce(context.Background()); n != 1 {
		t.Fatalf("after Retry-After: leased %d rows, want 1", n)
	}
	for i, p := range f.peers[:2] {
		if attempts, _, _, _ := p.stats(); attempts != 1 {
			t.Errorf("peer %d answered a permanent status and got %d requests", i, attempts)
		}
	}
}

func TestPerHostConcurrencyAndKeepAlive(t *testing.T) {
	f := newFediverse(t, 2, "conc.test", nil)
	s, _ := newStore(t)
	c := newClock()
	e := newExecutor(t, s, f, c, func(cfg *Config) { cfg.Concurrency, cfg.PerHost = 6, 2 })
	for _, p := range f.peers {
		p.delay.Store(int64(5 * time.Millisecond))
	}
	to := f.followers(60, false)
	if err := NewPublisher(s, e).Publish(context.Background(), newActivity("conc", c.Now()), to); err != nil {
		t.Fatal(err)
	}
	if n, err := e.RunOnce(context.Background()); err != nil || n != 60 {
		t.Fatalf("RunOnce = %d, %v", n, err)
	}
	for _, p := range f.peers {
		attempts, maxIn, _, conns := p.stats()
		if attempts != 30 || maxIn > 2 {
			t.Errorf("%s: %d requests, %d at once (limit 2)", p.name, attempts, maxIn)
		}
		// 2 at a time, so 2 connections when every one is reused; peers close connections
		// idle for 400 ms, which a busy machine can cause now and then.
		if conns > 10 {
			t.Errorf("%s: %d connections for 30 requests: keep-alive not reused", p.name, conns)
		}
	}
}

func TestRunWakesOnKick(t *testing.T) {
	f := newFediverse(t, 1, "kick.test", nil)
	s, _ := newStore(t)
	e := newExecutor(t, s, f, newClock(), func(cfg *Config) { cfg.Now, cfg.PollInterval = nil, time.Hour })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	time.Sleep(50 * time.Millisecond) // let the first (empty) round pass
	to := f.followers(1, true)
	a := newActivity("kick", time.Now())
	if err := NewPublisher(s, e).Publish(context.Background(), a, to); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for f.peers[0].count(a.ID, "/inbox") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("Run did not deliver within 5 s of a Kick (poll interval is 1 h)")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestRootErrorDoesNotPileUp(t *testing.T) {
	tests := map[string]string{
		"":                "",
		"503 from h.test": "503 from h.test",
		"circuit open for h until T1; last error: 503 from h.test":                                "503 from h.test",
		"circuit open for h until T2; last error: circuit open until T1; last error: i/o timeout": "i/o timeout",
	}
	for in, want := range tests {
		if got := rootError(in); got != want {
			t.Errorf("rootError(%q) = %q, want %q", in, got, want)
		}
	}
}
