package delivery

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/keys"
	"github.com/fedforge/fedforge/internal/store"
	"github.com/fedforge/fedforge/internal/urls"
)

// testActor is the local actor of every test; its keys are generated once per binary.
const testBase = "http://origin.test"

var testActorID = urls.ForActor(testBase, "releases").ID

var (
	pairOnce sync.Once
	pair     *keys.Pair
	pairErr  error
)

func testPair(t testing.TB) *keys.Pair {
	pairOnce.Do(func() { pair, pairErr = keys.Generate() })
	if pairErr != nil {
		t.Fatal(pairErr)
	}
	return pair
}

// writeKeyDir writes the actor's key Secret as Kubernetes mounts it, and returns the dir.
func writeKeyDir(t testing.TB, dir string) string {
	data, err := testPair(t).Data()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, b := range data {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// testKeys returns DirKeys for the test actor, read from a mounted-Secret layout.
func testKeys(t testing.TB) *DirKeys {
	dir := writeKeyDir(t, filepath.Join(t.TempDir(), "keys", "releases"))
	k, err := LoadDirKeys(filepath.Dir(dir), []JobActor{{ID: testActorID, Dir: "releases"}})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func openStore(t testing.TB, dsn string) store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newStore(t testing.TB) (store.Store, string) {
	dsn := "sqlite://" + filepath.Join(t.TempDir(), "fedforge.db")
	return openStore(t, dsn), dsn
}

// clock is an injectable clock tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// Peer behaviours.
const (
	modeOK         int32 = iota // 202 Accepted
	mode5xx                     // 503 Service Unavailable
	modeTimeout                 // no answer until the client gives up
	modeRefused                 // nothing listening
	modeSlowBody                // 200 with a body trickled slower than the read timeout
	modeGone                    // 410 Gone
	modeBadRequest              // 400
	modeRateLimit               // 429 with Retry-After: 3600
)

// peer is one remote host on 127.0.0.1, with its own listener, recording what it got.
type peer struct {
	name     string
	addr     string
	mode     atomic.Int32
	verifier *activitypub.Verifier

	delay atomic.Int64 // nanoseconds a 2xx answer waits
	// idle is how long the peer keeps an idle connection; zero means peerIdleTimeout.
	idle time.Duration

	mu       sync.Mutex
	srv      *http.Server
	conns    int            // connections accepted (keep-alive reuse keeps this low)
	accepted map[string]int // activity id + " " + path -> 2xx answered in modeOK
	attempts int            // every request, any mode
	inflight int
	maxIn    int
	badSig   int
}

func (p *peer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.attempts++
	p.inflight++
	p.maxIn = max(p.maxIn, p.inflight)
	p.mu.Unlock()
	defer func() { p.mu.Lock(); p.inflight--; p.mu.Unlock() }()
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	switch p.mode.Load() {
	case mode5xx:
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	case modeTimeout:
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
		return
	case modeSlowBody:
		w.Header().Set("Content-Length", "100")
		w.WriteHeader(http.StatusOK)
		for range 10 { // one byte every 600 ms: slower than any read timeout used here
			if _, err := w.Write([]byte("x")); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(600 * time.Millisecond):
			}
		}
		return
	case modeGone:
		w.WriteHeader(http.StatusGone)
		return
	case modeBadRequest:
		w.WriteHeader(http.StatusBadRequest)
		return
	case modeRateLimit:
		w.Header().Set("Retry-After", "3600")
		w.WriteHeader(http.StatusTooManyRequests)
		return
	}
	if p.verifier != nil {
		if _, err := p.verifier.VerifyRequest(r.Context(), r, body); err != nil {
			p.mu.Lock()
			p.badSig++
			p.mu.Unlock()
			http.Error(w, err.Error(), activitypub.StatusOf(err))
			return
		}
	}
	if d := p.delay.Load(); d > 0 {
		time.Sleep(time.Duration(d))
	}
	var doc struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(body, &doc)
	p.mu.Lock()
	p.accepted[doc.ID+" "+r.URL.Path]++
	p.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
}

// peerIdleTimeout is how long peers keep an idle connection (see start). BenchmarkJobPath
// raises it to 5 s (under its 10 s read timeout) before starting its peers: on a machine
// loaded by other work, gaps between two requests of one connection exceed 400 ms, and a
// connection closed as it is reused fails the POST (EOF), which sends the row to a later
// round than the benchmark's Job runs.
var peerIdleTimeout = 400 * time.Millisecond

func (p *peer) start() error {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		return err
	}
	p.addr = ln.Addr().String()
	// IdleTimeout: the outbound client arms its read deadline when a Read starts, and
	// the transport's read loop starts one as soon as a connection goes idle; a
	// connection reused after idling close to ReadTimeout then times out on an answer
	// that came in time, and the row is sent again (see docs/delivery.md). Peers close
	// idle connections well before that (the fault test's read timeout is 1 s), as many real
	// servers do: after 400 ms, which a loaded machine's gaps between two requests of one
	// round stay under (at 100 ms, a connection closed as it was reused failed a request
	// now and then under load, and the row went to the next round).
	idle := p.idle
	if idle == 0 {
		idle = peerIdleTimeout
	}
	srv := &http.Server{Handler: p, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: idle, ConnState: func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			p.mu.Lock()
			p.conns++
			p.mu.Unlock()
		}
	}}
	p.mu.Lock()
	p.srv = srv
	p.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
	return nil
}

func (p *peer) stop() {
	p.mu.Lock()
	srv := p.srv
	p.srv = nil
	p.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// setMode switches the behaviour; refused closes the listener, leaving it reopens it on
// the same port.
func (p *peer) setMode(t testing.TB, m int32) {
	old := p.mode.Swap(m)
	switch {
	case m == modeRefused && old != modeRefused:
		p.stop()
	case m != modeRefused && old == modeRefused:
		var err error
		for range 50 {
			if err = p.start(); err == nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("reopening %s on %s: %v", p.name, p.addr, err)
	}
}

// total is the number of 2xx answers the peer gave.
func (p *peer) total() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, v := range p.accepted {
		n += v
	}
	return n
}

func (p *peer) count(activityID, path string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted[activityID+" "+path]
}

func (p *peer) stats() (attempts, maxInflight, badSig, conns int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.attempts, p.maxIn, p.badSig, p.conns
}

// fediverse is a set of peers named hNNNN.<zone>, reached through ClientConfig.Resolve.
type fediverse struct {
	peers   []*peer
	byName  map[string]*peer
	resolve map[string]string
	// readTimeout and totalTimeout of the client (defaults 3 s and 6 s).
	readTimeout, totalTimeout time.Duration
	// cpu, for peers in a process of their own (peersApart), is that process's CPU time.
	cpu func() time.Duration
}

func newFediverse(t testing.TB, n int, zone string, v *activitypub.Verifier) *fediverse {
	f := &fediverse{byName: map[string]*peer{}, resolve: map[string]string{}}
	for i := range n {
		p := &peer{name: fmt.Sprintf("h%04d.%s", i, zone), addr: "127.0.0.1:0", verifier: v, accepted: map[string]int{}}
		if err := p.start(); err != nil {
			t.Fatal(err)
		}
		f.peers = append(f.peers, p)
		f.byName[p.name] = p
		f.resolve[p.name] = p.addr
	}
	t.Cleanup(func() {
		for _, p := range f.peers {
			p.stop()
		}
	})
	return f
}

// setIdle restarts every peer on its port with idle as its idle-connection timeout.
func (f *fediverse) setIdle(t testing.TB, idle time.Duration) {
	for _, p := range f.peers {
		p.stop()
		p.idle = idle
		var err error
		for range 50 {
			if err = p.start(); err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("restarting %s on %s: %v", p.name, p.addr, err)
		}
	}
}

// conns is the number of connections the peers accepted.
func (f *fediverse) conns() int {
	n := 0
	for _, p := range f.peers {
		_, _, _, c := p.stats()
		n += c
	}
	return n
}

// accepted is the number of 2xx answers over all peers.
func (f *fediverse) accepted() int {
	n := 0
	for _, p := range f.peers {
		n += p.total()
	}
	return n
}

// host is the host[:port] of peer i as delivery rows name it.
func (f *fediverse) host(i int) string {
	_, port, _ := net.SplitHostPort(f.peers[i].addr)
	return f.peers[i].name + ":" + port
}

// followers spreads n followers over the peers; with shared inboxes, every follower on
// one host shares the host's /inbox.
func (f *fediverse) followers(n int, shared bool) []Recipient {
	out := make([]Recipient, 0, n)
	for i := range n {
		h := i % len(f.peers)
		r := Recipient{Inbox: fmt.Sprintf("http://%s/users/u%d/inbox", f.host(h), i)}
		if shared {
			r.SharedInbox = fmt.Sprintf("http://%s/inbox", f.host(h))
		}
		out = append(out, r)
	}
	return out
}

// clientConfig reaches the peers on loopback.
func (f *fediverse) clientConfig() activitypub.ClientConfig {
	// Generous by default: a healthy answer that misses the timeout because the machine
	// is busy is sent again (at least once), which would break exact-once assertions.
	read, total := f.readTimeout, f.totalTimeout
	if read == 0 {
		read, total = 3*time.Second, 6*time.Second
	}
	return activitypub.ClientConfig{
		InstanceHost: "origin.test", AllowHTTP: true, Resolve: f.resolve,
		AllowedCIDRs:   []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		ConnectTimeout: 3 * time.Second, ReadTimeout: read, TotalTimeout: total,
	}
}

// receivedOnce checks that every (activity, target) was accepted exactly once, and
// returns how many extra 2xx answers there were (duplicates).
func (f *fediverse) checkTargets(t testing.TB, activityIDs []string, to []Recipient, exact bool) (dups int) {
	t.Helper()
	missing := 0
	for _, a := range activityIDs {
		for _, tg := range Targets(to) {
			u := tg.Inbox
			host := HostOf(u)
			name, _, _ := net.SplitHostPort(host)
			p := f.byName[name]
			path := u[len("http://"+host):]
			n := p.count(a, path)
			switch {
			case n == 0:
				missing++
				if missing <= 5 {
					t.Errorf("%s never got %s (mode %d)", u, a, p.mode.Load())
				}
			case n > 1:
				dups += n - 1
				if exact {
					t.Errorf("%s got %s %d times", u, a, n)
				}
			}
		}
	}
	if missing > 0 {
		t.Errorf("%d deliveries lost", missing)
	}
	return dups
}

// newActivity returns an activity of the test actor with a unique id.
func newActivity(id string, published time.Time) store.Activity {
	aid := testActorID + "/activities/" + id
	raw, _ := json.Marshal(map[string]any{
		"@context": "https://www.w3.org/ns/activitystreams", "id": aid, "type": "Create", "actor": testActorID,
		"to":     []string{"https://www.w3.org/ns/activitystreams#Public"},
		"object": map[string]any{"id": aid + "/note", "type": "Note", "content": "release " + id},
	})
	return store.Activity{ID: aid, ActorID: testActorID, Type: "Create", ObjectID: aid + "/note",
		Visibility: store.Public, Published: published, Raw: raw}
}

// staticKeys resolves the test actor's key the way a KeyCache would after fetching it.
type staticKeys struct{ t testing.TB }

func (s staticKeys) ResolveKey(_ context.Context, keyID string, _ bool) (*activitypub.RemoteKey, error) {
	if keyID != (urls.Actor{ID: testActorID}).RSAKeyID() {
		return nil, fmt.Errorf("%w: %s", activitypub.ErrUnknownKey, keyID)
	}
	return &activitypub.RemoteKey{ID: keyID, Owner: testActorID, Key: testPair(s.t).RSA.Public()}, nil
}

// queueStats reads the queue counts at now.
func queueStats(t testing.TB, s store.Store, now time.Time) store.QueueStats {
	t.Helper()
	st, err := s.QueueStats(context.Background(), now)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// drain runs RunOnce, moving the clock by step between rounds, until nothing is pending
// or rounds run out; it returns the rounds used.
func drain(t testing.TB, e *Executor, s store.Store, c *clock, step time.Duration, rounds int) int {
	t.Helper()
	ctx := context.Background()
	for i := range rounds {
		if _, err := e.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		if queueStats(t, s, c.Now()).Pending == 0 {
			return i + 1
		}
		c.Add(step)
	}
	st := queueStats(t, s, c.Now())
	t.Fatalf("queue not drained after %d rounds: %+v", rounds, st)
	return rounds
}

// newExecutor makes an executor on q for the peers of f, on clock c.
func newExecutor(t testing.TB, q Queue, f *fediverse, c *clock, mods ...func(*Config)) *Executor {
	t.Helper()
	cfg := Config{
		Queue: q, Client: activitypub.NewClient(f.clientConfig()), Keys: testKeys(t),
		Concurrency: 8, PerHost: 4, RequestTimeout: 6 * time.Second, Lease: 30 * time.Second, Now: c.Now,
		Retry: RetryPolicy{Rand: func() float64 { return 0.5 }},
	}
	for _, m := range mods {
		m(&cfg)
	}
	e, err := NewExecutor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}
