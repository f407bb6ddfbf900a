package app

import (
	"context"
	"crypto"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/store"
)

// Two real instances on 127.0.0.2 and 127.0.0.3, each a `fedforge server` process's
// code path (RunServer: store, exchanges, in-process delivery) with its own host name,
// both configured through one real kube-apiserver and the real manager.
const (
	alphaHost = "alpha.fedforge.test"
	betaHost  = "beta.fedforge.test"
)

type instance struct {
	ns, host, listen, dsn string
	// internal serves the delivery queue to delivery Jobs, with token deliveryToken.
	internal string
	// metrics serves the process's /metrics (alpha only; "0" turns it off).
	metrics string
}

const deliveryToken = "test-delivery-token"

func (i instance) base() string { return "http://" + i.host }

type pair struct {
	k8s client.Client
	// cfg is the rest config of this pair's API server, for tests that start more
	// server processes against it (per pair, not a global: the tests run in parallel).
	cfg         *rest.Config
	alpha, beta instance
	// alphaWrites counts the requests that change something (not GET, LIST or WATCH) that
	// alpha's server process makes to the API server.
	alphaWrites *writeLog
}

// writeLog records the paths of mutating API requests.
type writeLog struct {
	mu    sync.Mutex
	paths []string
	// statusDelay holds back every Subscription status write by this long (nanoseconds),
	// so that a test can widen the window between a status write and the cache seeing it.
	statusDelay atomic.Int64
}

// since returns the paths written from index i on, and the new index.
func (l *writeLog) since(i int) ([]string, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.paths[i:]...), len(l.paths)
}

// countWrites records mutating API requests.
type countWrites struct {
	next http.RoundTripper
	log  *writeLog
}

func (c countWrites) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method != http.MethodGet {
		c.log.mu.Lock()
		c.log.paths = append(c.log.paths, r.Method+" "+r.URL.Path)
		c.log.mu.Unlock()
		if d := c.log.statusDelay.Load(); d > 0 && strings.Contains(r.URL.Path, "/subscriptions/") && strings.HasSuffix(r.URL.Path, "/status") {
			time.Sleep(time.Duration(d))
		}
	}
	return c.next.RoundTrip(r)
}

func assets(t *testing.T) string {
	if d := os.Getenv("KUBEBUILDER_ASSETS"); d != "" {
		return d
	}
	out, err := exec.Command(filepath.Join("..", "..", "hack", "envtest-binaries.sh")).Output()
	if err != nil {
		t.Fatalf("envtest binaries: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// freeAddr finds a free port on ip.
func freeAddr(t *testing.T, ip string) string {
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatalf("listening on %s (the whole of 127.0.0.0/8 is loopback on Linux): %v", ip, err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// newPair starts a control plane of its own (envtest), the manager and the two server
// processes, all on ephemeral ports, with SQLite files in t.TempDir(): a test that uses it
// can call t.Parallel() unless it changes process-wide state (package variables,
// environment, the Prometheus registry it asserts on) - see docs/decisions.md, "internal/app
// tests run in parallel".
func newPair(t *testing.T, extraResolve ...string) *pair {
	t.Helper()
	setTestLogger()
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets(t),
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("envtest: %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	ctx, cancel := context.WithCancel(context.Background())
	k, err := client.New(cfg, client.Options{Scheme: Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := NewManager(cfg, ManagerOptions{MetricsAddr: "0", ProbeAddr: "0", LocalMode: true})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{}, 3)
	go func() { _ = mgr.Start(ctx); done <- struct{}{} }()

	p := &pair{
		k8s: k, cfg: cfg, alphaWrites: &writeLog{},
		alpha: instance{ns: "alpha", host: alphaHost, listen: freeAddr(t, "127.0.0.2"), dsn: "sqlite://" + filepath.Join(t.TempDir(), "alpha.db"), internal: freeAddr(t, "127.0.0.2"), metrics: freeAddr(t, "127.0.0.2")},
		beta:  instance{ns: "beta", host: betaHost, listen: freeAddr(t, "127.0.0.3"), dsn: "sqlite://" + filepath.Join(t.TempDir(), "beta.db"), metrics: "0"},
	}
	resolve := append([]string{alphaHost + "=" + p.alpha.listen, betaHost + "=" + p.beta.listen}, extraResolve...)
	for _, in := range []instance{p.alpha, p.beta} {
		must(t, k.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: in.ns}}))
		must(t, k.Create(ctx, &fedv1.FederationServer{
			ObjectMeta: metav1.ObjectMeta{Namespace: in.ns, Name: "forge"},
			Spec:       fedv1.FederationServerSpec{Host: in.host, Scheme: fedv1.SchemeHTTP, AllowedPrivateCIDRs: []string{"127.0.0.0/8"}},
		}))
		scfg := cfg
		if in.ns == "alpha" {
			scfg = rest.CopyConfig(cfg)
			scfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return countWrites{rt, p.alphaWrites} })
		}
		go func(in instance, cfg *rest.Config) {
			err := runServer(ctx, cfg, ServerOptions{
				Server: in.ns + "/forge", Listen: in.listen,
				StoreDSN: in.dsn, InternalListen: in.internal, DeliveryToken: deliveryToken, StatusInterval: time.Second,
				AllowedCIDRs: []string{"127.0.0.0/8"}, AllowHTTP: true, Resolve: resolve, MetricsAddr: in.metrics, FeedTick: time.Second,
			})
			if err != nil && ctx.Err() == nil {
				t.Errorf("server %s: %v", in.ns, err)
			}
			done <- struct{}{}
		}(in, scfg)
	}
	t.Cleanup(func() {
		cancel()
		for range 3 {
			<-done
		}
	})
	for _, in := range []instance{p.alpha, p.beta} {
		eventually(t, 30*time.Second, func() error {
			resp, err := http.Get("http://" + in.listen + "/readyz")
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				return fmt.Errorf("%s not ready: %d", in.ns, resp.StatusCode)
			}
			return nil
		})
	}
	return p
}

// setTestLogger sets controller-runtime's process-wide logger once: only its first
// SetLogger takes effect, and concurrent calls from parallel tests would race on it.
var setTestLogger = sync.OnceFunc(func() {
	if os.Getenv("FEDFORGE_TEST_LOG") != "" {
		logf.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.UseDevMode(true)))
	} else {
		logf.SetLogger(logr.Discard())
	}
})

// runServer is RunServer; a variable so that the test names what it runs.
var runServer = func(ctx context.Context, cfg *rest.Config, o ServerOptions) error { return RunServer(ctx, cfg, o) }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func eventually(t *testing.T, within time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %v", within, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (p *pair) actor(t *testing.T, in instance, name, username string, manual bool) {
	t.Helper()
	must(t, p.k8s.Create(context.Background(), &fedv1.FederatedActor{
		ObjectMeta: metav1.ObjectMeta{Namespace: in.ns, Name: name},
		Spec: fedv1.FederatedActorSpec{ServerRef: fedv1.LocalObjectReference{Name: "forge"}, Type: fedv1.ActorApplication,
			PreferredUsername: username, Name: username, ManuallyApprovesFollowers: manual},
	}))
	waitServed(t, in, username)
}

// waitServed waits until in serves the actor username's document (once the key
// controller has written its keys).
func waitServed(t *testing.T, in instance, username string) {
	t.Helper()
	eventually(t, 30*time.Second, func() error {
		req, _ := http.NewRequest(http.MethodGet, "http://"+in.listen+"/actors/"+username, nil)
		req.Host = in.host
		req.Header.Set("Accept", activitypub.AcceptActivity)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("actor %s/%s: %d", in.ns, username, resp.StatusCode)
		}
		return nil
	})
}

func (p *pair) follow(t *testing.T, in instance, name, actor, remote string) {
	t.Helper()
	must(t, p.k8s.Create(context.Background(), &fedv1.Subscription{
		ObjectMeta: metav1.ObjectMeta{Namespace: in.ns, Name: name},
		Spec:       fedv1.SubscriptionSpec{Direction: fedv1.DirectionOutbound, ActorRef: fedv1.LocalObjectReference{Name: actor}, RemoteActor: remote},
	}))
}

// enforced waits until the server reports that it enforces the policy's current
// generation (condition Enforced).
func (p *pair) enforced(t *testing.T, ns, name string) {
	t.Helper()
	eventually(t, 30*time.Second, func() error {
		var pol fedv1.FederationPolicy
		if err := p.k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, &pol); err != nil {
			return err
		}
		c := meta.FindStatusCondition(pol.Status.Conditions, fedv1.ConditionEnforced)
		if c == nil || c.Status != metav1.ConditionTrue || c.ObservedGeneration != pol.Generation {
			return fmt.Errorf("policy %s/%s generation %d: Enforced is %+v", ns, name, pol.Generation, c)
		}
		return nil
	})
}

// phase waits for a Subscription's phase.
func (p *pair) phase(t *testing.T, ns, name string, want fedv1.SubscriptionPhase) *fedv1.Subscription {
	t.Helper()
	var s fedv1.Subscription
	eventually(t, 30*time.Second, func() error {
		if err := p.k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, &s); err != nil {
			return err
		}
		if s.Status.Phase != want {
			return fmt.Errorf("subscription %s/%s is %q (%v), want %q", ns, name, s.Status.Phase, s.Status.Conditions, want)
		}
		return nil
	})
	return &s
}

// inbound waits for the Inbound Subscription of remote on ns/actor and returns it.
func (p *pair) inbound(t *testing.T, ns, actor, remote string, want fedv1.SubscriptionPhase) *fedv1.Subscription {
	t.Helper()
	var found *fedv1.Subscription
	eventually(t, 30*time.Second, func() error {
		var list fedv1.SubscriptionList
		if err := p.k8s.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
			return err
		}
		for i, s := range list.Items {
			if s.Spec.Direction == fedv1.DirectionInbound && s.Spec.ActorRef.Name == actor && s.Spec.RemoteActor == remote {
				if s.Status.Phase != want {
					return fmt.Errorf("inbound %s is %q, want %q", s.Name, s.Status.Phase, want)
				}
				found = &list.Items[i]
				return nil
			}
		}
		return fmt.Errorf("no inbound Subscription of %s for %s/%s", remote, ns, actor)
	})
	return found
}

func (p *pair) gone(t *testing.T, ns string, match func(fedv1.Subscription) bool) {
	t.Helper()
	eventually(t, 30*time.Second, func() error {
		var list fedv1.SubscriptionList
		if err := p.k8s.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
			return err
		}
		for _, s := range list.Items {
			if match(s) {
				return fmt.Errorf("subscription %s still there (phase %s)", s.Name, s.Status.Phase)
			}
		}
		return nil
	})
}

// getAS2 fetches a document from an instance the way a peer would (Host header set).
func getAS2(t *testing.T, in instance, path string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+in.listen+path, nil)
	req.Host = in.host
	req.Header.Set("Accept", activitypub.AcceptActivity)
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	var m map[string]any
	must(t, json.Unmarshal(body, &m))
	return m
}

func followersCount(t *testing.T, p *pair, ns, actor string) int32 {
	var a fedv1.FederatedActor
	must(t, p.k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: actor}, &a))
	if a.Status.Followers == nil {
		return -1
	}
	return *a.Status.Followers
}

func TestTwoInstancesFederate(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	ctx := context.Background()
	p.actor(t, p.alpha, "releases", "releases", false)
	p.actor(t, p.beta, "watcher", "watcher", false)
	alphaID := p.alpha.base() + "/actors/releases"
	betaID := p.beta.base() + "/actors/watcher"

	t.Run("follow by acct: and be accepted, both ways", func(t *testing.T) {
		p.follow(t, p.beta, "watch-releases", "watcher", "acct:releases@"+alphaHost)
		p.follow(t, p.alpha, "releases-watches-back", "releases", betaID)
		out := p.phase(t, "beta", "watch-releases", fedv1.PhaseAccepted)
		if out.Status.RemoteActorID != alphaID || out.Status.RemoteInbox != alphaID+"/inbox" || out.Status.RemoteSharedInbox != p.alpha.base()+"/inbox" {
			t.Errorf("resolved %+v", out.Status)
		}
		p.phase(t, "alpha", "releases-watches-back", fedv1.PhaseAccepted)
		in := p.inbound(t, "alpha", "releases", betaID, fedv1.PhaseAccepted)
		if in.Status.FollowActivityID != out.Status.FollowActivityID {
			t.Errorf("inbound records Follow %q, outbound sent %q", in.Status.FollowActivityID, out.Status.FollowActivityID)
		}
		p.inbound(t, "beta", "watcher", alphaID, fedv1.PhaseAccepted)
		eventually(t, 30*time.Second, func() error {
			if n := followersCount(t, p, "alpha", "releases"); n != 1 {
				return fmt.Errorf("alpha followers = %d", n)
			}
			return nil
		})
		if c := getAS2(t, p.alpha, "/actors/releases/followers"); c["totalItems"] != float64(1) {
			t.Errorf("followers collection %v", c)
		}
		page := getAS2(t, p.alpha, "/actors/releases/followers?page=true")
		if items, _ := page["orderedItems"].([]any); len(items) != 1 || items[0] != betaID {
			t.Errorf("followers page %v", page)
		}
		if c := getAS2(t, p.beta, "/actors/watcher/following"); c["totalItems"] != float64(1) {
			t.Errorf("following collection %v", c)
		}
		eventually(t, 30*time.Second, func() error {
			var fs fedv1.FederationServer
			if err := p.k8s.Get(ctx, types.NamespacedName{Namespace: "alpha", Name: "forge"}, &fs); err != nil {
				return err
			}
			if d := fs.Status.Delivery; d == nil || d.ObservedAt == nil {
				return fmt.Errorf("no delivery summary in the FederationServer status")
			}
			return nil
		})
	})

	t.Run("followers-only posts are served to signed requests of followers only", func(t *testing.T) {
		st, err := store.Open(ctx, p.alpha.dsn) // the instance's own SQLite file (WAL: shared)
		must(t, err)
		defer st.Close()
		publish := func(n int, vis store.Visibility) string {
			id := fmt.Sprintf("%s/activities/test-%d", alphaID, n)
			raw := fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","id":%q,"type":"Create","actor":%q,"to":[%q],"object":{"id":"%s/objects/test-%d","type":"Note","content":"n"}}`, id, alphaID, alphaID+"/followers", alphaID, n)
			_, err := st.AppendActivity(ctx, store.Activity{ID: id, ActorID: alphaID, Type: "Create", Visibility: vis, Published: time.Now().UTC(), Raw: json.RawMessage(raw)}, nil)
			must(t, err)
			return strings.TrimPrefix(id, p.alpha.base())
		}
		public, private := publish(1, store.Public), publish(2, store.Followers)
		get := func(path string, key crypto.Signer, keyID string) int {
			req, _ := http.NewRequest(http.MethodGet, "http://"+alphaHost+path, nil)
			req.Header.Set("Accept", activitypub.AcceptActivity)
			if key != nil {
				must(t, activitypub.SignCavage(req, nil, key, keyID, activitypub.CavageOptions{}))
			}
			req.URL.Host = p.alpha.listen
			req.Host = alphaHost
			resp, err := http.DefaultClient.Do(req)
			must(t, err)
			resp.Body.Close()
			return resp.StatusCode
		}
		follower := actorKey(t, p, "beta", "watcher")
		if c := get(public, nil, ""); c != 200 {
			t.Errorf("public post unsigned: %d", c)
		}
		if c := get(private, nil, ""); c != 404 {
			t.Errorf("followers-only post unsigned: %d, want 404", c)
		}
		if c := get(private, follower, betaID+"#main-key"); c != 200 {
			t.Errorf("followers-only post signed by a follower: %d, want 200", c)
		}
		p.actor(t, p.beta, "stranger", "stranger", false)
		if c := get(private, actorKey(t, p, "beta", "stranger"), p.beta.base()+"/actors/stranger#main-key"); c != 404 {
			t.Errorf("followers-only post signed by a non-follower: %d, want 404", c)
		}
		outbox := getAS2(t, p.alpha, "/actors/releases/outbox")
		if outbox["totalItems"] != float64(1) {
			t.Errorf("outbox counts %v, want only the public post", outbox["totalItems"])
		}
		page := getAS2(t, p.alpha, "/actors/releases/outbox?page=true")
		if items, _ := page["orderedItems"].([]any); len(items) != 1 {
			t.Errorf("outbox page %v", page)
		}
	})

	t.Run("a follower whose host is unavailable shows in kubectl get subscriptions", func(t *testing.T) {
		st, err := store.Open(ctx, p.alpha.dsn)
		must(t, err)
		defer st.Close()
		day := time.Now().Add(time.Hour) // after the last success: 7 failing days from now on
		for i := range 7 {
			_, err := st.RecordHostFailure(ctx, betaHost, day.Add(time.Duration(i)*24*time.Hour), 7)
			must(t, err)
		}
		if hs, err := st.ListUnavailableHosts(ctx); err != nil || len(hs) != 1 {
			t.Fatalf("unavailable hosts after 7 failing days: %+v, %v", hs, err)
		}
		reachable := func(want metav1.ConditionStatus) {
			t.Helper()
			eventually(t, 30*time.Second, func() error {
				in := p.inbound(t, "alpha", "releases", betaID, fedv1.PhaseAccepted)
				if c := meta.FindStatusCondition(in.Status.Conditions, fedv1.ConditionReachable); c == nil || c.Status != want {
					return fmt.Errorf("Reachable = %v, want %s", c, want)
				}
				return nil
			})
		}
		reachable(metav1.ConditionFalse)
		must(t, st.RecordHostSuccess(ctx, betaHost, day.Add(8*24*time.Hour)))
		reachable(metav1.ConditionTrue)
	})

	t.Run("after a key rotation the peer keeps verifying", func(t *testing.T) {
		before := getAS2(t, p.alpha, "/actors/releases")["publicKey"].(map[string]any)["publicKeyPem"]
		var a fedv1.FederatedActor
		must(t, p.k8s.Get(ctx, types.NamespacedName{Namespace: "alpha", Name: "releases"}, &a))
		must(t, p.k8s.Patch(ctx, &a, client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"annotations":{"`+fedv1.AnnotationRotateKeys+`":"now"}}}`))))
		eventually(t, 30*time.Second, func() error {
			if getAS2(t, p.alpha, "/actors/releases")["publicKey"].(map[string]any)["publicKeyPem"] == before {
				return fmt.Errorf("key not rotated yet")
			}
			return nil
		})
		// beta holds the old key; alpha's next signed request (a Follow) must still verify:
		// through the Update alpha sends its followers, or a refetch.
		p.actor(t, p.beta, "rotation-peer", "rotation-peer", false)
		p.follow(t, p.alpha, "follows-rotation-peer", "releases", p.beta.base()+"/actors/rotation-peer")
		p.phase(t, "alpha", "follows-rotation-peer", fedv1.PhaseAccepted)
	})

	t.Run("unfollow sends Undo and removes the follower", func(t *testing.T) {
		var s fedv1.Subscription
		must(t, p.k8s.Get(ctx, types.NamespacedName{Namespace: "beta", Name: "watch-releases"}, &s))
		must(t, p.k8s.Delete(ctx, &s))
		p.gone(t, "alpha", func(s fedv1.Subscription) bool {
			return s.Spec.Direction == fedv1.DirectionInbound && s.Spec.RemoteActor == betaID
		})
		p.gone(t, "beta", func(s fedv1.Subscription) bool { return s.Name == "watch-releases" })
		eventually(t, 30*time.Second, func() error {
			if n := followersCount(t, p, "alpha", "releases"); n != 0 {
				return fmt.Errorf("alpha followers = %d", n)
			}
			return nil
		})
	})

	t.Run("manual approval waits for spec.approved, a kubectl delete rejects", func(t *testing.T) {
		p.actor(t, p.alpha, "private", "private", true)
		p.follow(t, p.beta, "watch-private", "watcher", p.alpha.base()+"/actors/private")
		in := p.inbound(t, "alpha", "private", betaID, fedv1.PhaseAwaitingApproval)
		p.phase(t, "beta", "watch-private", fedv1.PhasePending)
		// A post that overtakes the Accept (peers deliver both at once) is kept: beta
		// asked for alpha/private's posts when it sent the Follow.
		privateID := p.alpha.base() + "/actors/private"
		early := []byte(fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","id":%q,"type":"Create","actor":%q,`+
			`"to":["https://www.w3.org/ns/activitystreams#Public"],"cc":[%q],"object":{"id":%q,"type":"Note","attributedTo":%q,"content":"overtakes the Accept"}}`,
			privateID+"/activities/early", privateID, privateID+"/followers", privateID+"/notes/early", privateID))
		if c, reason := post(t, p.beta, "/inbox", early, "application/activity+json",
			signer(t, early, actorKey(t, p, "alpha", "private"), privateID+"#main-key", time.Now())); c != http.StatusAccepted {
			t.Fatalf("a post before the Accept: %d %s", c, reason)
		}
		received(t, p.beta.dsn, betaID, "overtakes the Accept")
		must(t, p.k8s.Patch(ctx, in, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"approved":true}}`))))
		p.phase(t, "beta", "watch-private", fedv1.PhaseAccepted)
		p.inbound(t, "alpha", "private", betaID, fedv1.PhaseAccepted)
		// The platform team removes the follower: the peer is told with a Reject.
		must(t, p.k8s.Delete(ctx, in))
		p.phase(t, "beta", "watch-private", fedv1.PhaseRejected)
	})

	t.Run("a denylist refuses the next Follow with a Reject; removing it lets it through", func(t *testing.T) {
		pol := &fedv1.FederationPolicy{
			ObjectMeta: metav1.ObjectMeta{Namespace: "alpha", Name: "deny-beta"},
			Spec:       fedv1.FederationPolicySpec{TargetRef: fedv1.LocalObjectReference{Name: "forge"}, Mode: fedv1.PolicyDenylist, Hosts: []string{betaHost}},
		}
		must(t, p.k8s.Create(ctx, pol))
		p.enforced(t, "alpha", "deny-beta")
		p.follow(t, p.beta, "denied", "watcher", alphaID)
		p.phase(t, "beta", "denied", fedv1.PhaseRejected)
		p.gone(t, "alpha", func(s fedv1.Subscription) bool {
			return s.Spec.Direction == fedv1.DirectionInbound && s.Spec.RemoteActor == betaID && s.Spec.ActorRef.Name == "releases"
		})
		// An edit is reported at its new generation, and the operator's conditions stay.
		must(t, p.k8s.Get(ctx, client.ObjectKeyFromObject(pol), pol))
		pol.Spec.Hosts = append(pol.Spec.Hosts, "other.invalid")
		must(t, p.k8s.Update(ctx, pol))
		p.enforced(t, "alpha", "deny-beta")
		eventually(t, 30*time.Second, func() error {
			must(t, p.k8s.Get(ctx, client.ObjectKeyFromObject(pol), pol))
			if !meta.IsStatusConditionTrue(pol.Status.Conditions, fedv1.ConditionReady) || !meta.IsStatusConditionTrue(pol.Status.Conditions, fedv1.ConditionEnforced) {
				return fmt.Errorf("conditions %+v, want Ready and Enforced", pol.Status.Conditions)
			}
			return nil
		})
		must(t, p.k8s.Delete(ctx, pol))
		// A deleted policy has no status to wait on. The server's cache takes policy
		// events in order, so once it enforces a policy created after the deletion, it
		// has seen the deletion.
		must(t, p.k8s.Create(ctx, &fedv1.FederationPolicy{
			ObjectMeta: metav1.ObjectMeta{Namespace: "alpha", Name: "barrier"},
			Spec:       fedv1.FederationPolicySpec{TargetRef: fedv1.LocalObjectReference{Name: "forge"}, Mode: fedv1.PolicyDenylist, Hosts: []string{"barrier.invalid"}},
		}))
		p.enforced(t, "alpha", "barrier")
		p.follow(t, p.beta, "allowed", "watcher", alphaID)
		p.phase(t, "beta", "allowed", fedv1.PhaseAccepted)
	})

	t.Run("deleting an actor sends Delete: its followers drop their Subscriptions", func(t *testing.T) {
		// beta/watcher follows alpha/releases ("allowed"); alpha/releases follows beta/watcher.
		var a fedv1.FederatedActor
		must(t, p.k8s.Get(ctx, types.NamespacedName{Namespace: "beta", Name: "watcher"}, &a))
		must(t, p.k8s.Delete(ctx, &a))
		p.gone(t, "alpha", func(s fedv1.Subscription) bool {
			return s.Spec.RemoteActor == betaID || s.Status.RemoteActorID == betaID
		})
		eventually(t, 30*time.Second, func() error {
			err := p.k8s.Get(ctx, types.NamespacedName{Namespace: "beta", Name: "watcher"}, &a)
			if apierrors.IsNotFound(err) {
				return nil
			}
			return fmt.Errorf("actor still there: %v (finalizers %v)", err, a.Finalizers)
		})
	})
}
