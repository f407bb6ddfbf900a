package app

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/keys"
)

// The load measurements of the server issue. They only run with FEDFORGE_LOAD=1
// (hack/load-server.sh); they report figures for docs/benchmarks.md and assert only
// correctness (nothing lost), never timings.
func loadOnly(t *testing.T) {
	if os.Getenv("FEDFORGE_LOAD") == "" {
		t.Skip("load measurement: run hack/load-server.sh (FEDFORGE_LOAD=1)")
	}
}

// TestLoadInboxThroughput: verified signed POSTs per second into a real instance's
// shared inbox, beside the raw RSA-2048 verify rate measured in the same run with the
// same concurrency.
func TestLoadInboxThroughput(t *testing.T) {
	loadOnly(t)
	p := newPair(t)
	p.actor(t, p.alpha, "releases", "releases", false)
	p.actor(t, p.beta, "watcher", "watcher", false)
	key := actorKey(t, p, "beta", "watcher")
	betaID := p.beta.base() + "/actors/watcher"
	const n, workers = 6000, 16

	// Pre-sign every request, so that the measurement is the server's work only.
	type signed struct {
		body []byte
		hdr  http.Header
	}
	reqs := make([]signed, n+1)
	for i := range reqs {
		body := []byte(fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","id":"%s/notes/%d/activity","type":"Create","actor":%q,"to":["https://www.w3.org/ns/activitystreams#Public"],"object":{"id":"%s/notes/%d","type":"Note","content":"load %d","attributedTo":%q}}`, p.beta.base(), i, betaID, p.beta.base(), i, i, betaID))
		r, _ := http.NewRequest(http.MethodPost, "http://"+alphaHost+"/inbox", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/activity+json")
		must(t, activitypub.SignCavage(r, body, key, betaID+"#main-key", activitypub.CavageOptions{}))
		reqs[i] = signed{body, r.Header}
	}
	tr := &http.Transport{MaxIdleConnsPerHost: workers}
	hc := &http.Client{Transport: tr}
	send := func(s signed) int {
		r, _ := http.NewRequest(http.MethodPost, "http://"+p.alpha.listen+"/inbox", bytes.NewReader(s.body))
		r.Host = alphaHost
		r.Header = s.hdr.Clone()
		resp, err := hc.Do(r)
		if err != nil {
			return 0
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := send(reqs[n]); c != http.StatusAccepted { // warms the key cache
		t.Fatalf("warm-up POST: %d", c)
	}
	var next, ok atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= n {
					return
				}
				if send(reqs[i]) == http.StatusAccepted {
					ok.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if ok.Load() != n {
		t.Errorf("%d of %d POSTs accepted", ok.Load(), n)
	}
	inboxRate := float64(n) / elapsed.Seconds()

	// The raw limit: RSA-2048 PKCS#1 v1.5 verifications with the same concurrency.
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	must(t, err)
	digest := sha256.Sum256([]byte("signing string"))
	sig, err := rsa.SignPKCS1v15(nil, rk, crypto.SHA256, digest[:])
	must(t, err)
	const m = 60000
	next.Store(0)
	start = time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= m {
				_ = rsa.VerifyPKCS1v15(&rk.PublicKey, crypto.SHA256, digest[:], sig)
			}
		}()
	}
	wg.Wait()
	rawRate := float64(m) / time.Since(start).Seconds()
	t.Logf("inbox: %d signed POSTs in %s = %.0f/s; raw RSA-2048 verify: %.0f/s; ratio %.2f", n, elapsed.Round(time.Millisecond), inboxRate, rawRate, inboxRate/rawRate)
}

// fakePeer is a real HTTP server on 127.0.0.4 standing in for a remote instance with
// many actors (one shared key), whose shared inbox records when each Accept arrives.
type fakePeer struct {
	host, addr string
	key        *rsa.PrivateKey
	pem        string
	mu         sync.Mutex
	accepted   map[string]time.Time // Follow id -> Accept arrival
}

func newFakePeer(t *testing.T) *fakePeer {
	k, err := keys.Generate()
	must(t, err)
	pem, err := keys.EncodePublic(k.RSA.Public())
	must(t, err)
	ln, err := net.Listen("tcp", "127.0.0.4:0")
	must(t, err)
	fp := &fakePeer{host: "peer.fedforge.test", addr: ln.Addr().String(), key: k.RSA, pem: string(pem), accepted: map[string]time.Time{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /users/{name}", func(w http.ResponseWriter, r *http.Request) {
		id := "http://" + fp.host + "/users/" + r.PathValue("name")
		doc := map[string]any{
			"@context": []string{"https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"},
			"id":       id, "type": "Person", "preferredUsername": r.PathValue("name"),
			"inbox": id + "/inbox", "endpoints": map[string]string{"sharedInbox": "http://" + fp.host + "/inbox"},
			"publicKey": map[string]string{"id": id + "#main-key", "owner": id, "publicKeyPem": fp.pem},
		}
		w.Header().Set("Content-Type", "application/activity+json")
		_ = json.NewEncoder(w).Encode(doc)
	})
	record := func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var a struct {
			Type   string `json:"type"`
			Object struct {
				ID string `json:"id"`
			} `json:"object"`
		}
		if json.Unmarshal(body, &a) == nil && a.Type == "Accept" {
			fp.mu.Lock()
			if _, seen := fp.accepted[a.Object.ID]; !seen {
				fp.accepted[a.Object.ID] = time.Now()
			}
			fp.mu.Unlock()
		}
		w.WriteHeader(http.StatusAccepted)
	}
	mux.HandleFunc("POST /inbox", record)
	mux.HandleFunc("POST /users/{name}/inbox", record)
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return fp
}

// TestLoadFollowAccept: Follows from distinct remote actors at 100/s into a real
// instance; the time from each Follow POST to its signed Accept arriving at the peer.
func TestLoadFollowAccept(t *testing.T) {
	loadOnly(t)
	fp := newFakePeer(t)
	p := newPair(t, fp.host+"="+fp.addr)
	p.actor(t, p.alpha, "releases", "releases", false)
	alphaID := p.alpha.base() + "/actors/releases"
	const rate, seconds = 100, 10
	n := rate * seconds
	sent := make([]time.Time, n)
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Second / rate)
	defer tick.Stop()
	var failed atomic.Int64
	for i := range n {
		<-tick.C
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			actor := fmt.Sprintf("http://%s/users/u%d", fp.host, i)
			body := []byte(fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","id":"%s/follows/1","type":"Follow","actor":%q,"object":%q}`, actor, actor, alphaID))
			r, _ := http.NewRequest(http.MethodPost, "http://"+p.alpha.listen+"/inbox", bytes.NewReader(body))
			r.Host = alphaHost
			r.URL.Host = alphaHost
			r.Header.Set("Content-Type", "application/activity+json")
			must(t, activitypub.SignCavage(r, body, fp.key, actor+"#main-key", activitypub.CavageOptions{}))
			r.URL.Host = p.alpha.listen
			sent[i] = time.Now()
			resp, err := http.DefaultClient.Do(r)
			if err != nil || resp.StatusCode != http.StatusAccepted {
				failed.Add(1)
				if resp != nil {
					b, _ := io.ReadAll(resp.Body)
					t.Logf("follow %d: %d %s", i, resp.StatusCode, b)
				}
			}
			if resp != nil {
				resp.Body.Close()
			}
		}(i)
	}
	wg.Wait()
	eventually(t, 2*time.Minute, func() error {
		fp.mu.Lock()
		defer fp.mu.Unlock()
		if len(fp.accepted) < n-int(failed.Load()) {
			return fmt.Errorf("%d of %d Accepts arrived", len(fp.accepted), n)
		}
		return nil
	})
	if failed.Load() > 0 {
		t.Errorf("%d Follows were not accepted by the inbox", failed.Load())
	}
	lat := make([]time.Duration, 0, n)
	fp.mu.Lock()
	for i := range n {
		id := fmt.Sprintf("http://%s/users/u%d/follows/1", fp.host, i)
		if at, ok := fp.accepted[id]; ok {
			lat = append(lat, at.Sub(sent[i]))
		}
	}
	fp.mu.Unlock()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	q := func(f float64) time.Duration { return lat[int(f*float64(len(lat)-1))].Round(time.Millisecond) }
	t.Logf("follow -> Accept delivered at %d follows/s for %d s: n=%d p50=%s p90=%s p99=%s max=%s",
		rate, seconds, len(lat), q(0.5), q(0.9), q(0.99), q(1))
}

// TestLoadMemory: resident memory of `fedforge manager` and `fedforge server`, each its
// own process, with 10,000 accepted Subscriptions of one actor in the API server.
func TestLoadMemory(t *testing.T) {
	loadOnly(t)
	const subs = 10000
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets(t),
	}
	cfg, err := env.Start()
	must(t, err)
	t.Cleanup(func() { _ = env.Stop() })
	user, err := env.AddUser(envtest.User{Name: "load", Groups: []string{"system:masters"}}, nil)
	must(t, err)
	kc, err := user.KubeConfig()
	must(t, err)
	dir := t.TempDir()
	kcPath := filepath.Join(dir, "kubeconfig")
	must(t, os.WriteFile(kcPath, kc, 0o600))
	bin := filepath.Join(dir, "fedforge")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/manager").CombinedOutput(); err != nil {
		t.Fatalf("building fedforge: %v\n%s", err, out)
	}
	ctx := context.Background()
	k, err := client.New(withoutClientThrottling(cfg), client.Options{Scheme: Scheme()})
	must(t, err)
	must(t, k.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "load"}}))
	must(t, k.Create(ctx, &fedv1.FederationServer{ObjectMeta: metav1.ObjectMeta{Namespace: "load", Name: "forge"},
		Spec: fedv1.FederationServerSpec{Host: "load.fedforge.test", Scheme: fedv1.SchemeHTTP}}))
	must(t, k.Create(ctx, &fedv1.FederatedActor{ObjectMeta: metav1.ObjectMeta{Namespace: "load", Name: "releases"},
		Spec: fedv1.FederatedActorSpec{ServerRef: fedv1.LocalObjectReference{Name: "forge"}, PreferredUsername: "releases"}}))
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= subs {
					return
				}
				remote := fmt.Sprintf("http://h%d.load.test/users/u%d", i%1000, i)
				s := &fedv1.Subscription{ObjectMeta: metav1.ObjectMeta{Namespace: "load", Name: fmt.Sprintf("in-%05d", i)},
					Spec: fedv1.SubscriptionSpec{Direction: fedv1.DirectionInbound, ActorRef: fedv1.LocalObjectReference{Name: "releases"}, RemoteActor: remote}}
				if err := k.Create(ctx, s); err != nil {
					t.Error(err)
					return
				}
				s.Status = fedv1.SubscriptionStatus{Phase: fedv1.PhaseAccepted, RemoteActorID: remote, RemoteHost: fmt.Sprintf("h%d.load.test", i%1000),
					RemoteInbox: remote + "/inbox", RemoteSharedInbox: "http://127.0.0.9:9/inbox", FollowActivityID: remote + "/follow"}
				if err := k.Status().Update(ctx, s); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("created %d accepted Subscriptions in %s", subs, time.Since(start).Round(time.Second))

	run := func(args ...string) *exec.Cmd {
		cmd := exec.Command(bin, append(args, "--kubeconfig", kcPath)...)
		cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
		must(t, cmd.Start())
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return cmd
	}
	listen := freeAddr(t, "127.0.0.5")
	mgr := run("manager", "--local", "--metrics-bind-address", "0", "--health-probe-bind-address", "0")
	srv := run("server", "--server", "load/forge", "--listen", listen, "--store", "sqlite://"+filepath.Join(dir, "fedforge.db"), "--allow-http")
	eventually(t, 3*time.Minute, func() error {
		var a fedv1.FederatedActor
		if err := k.Get(ctx, types.NamespacedName{Namespace: "load", Name: "releases"}, &a); err != nil {
			return err
		}
		if a.Status.Followers == nil || *a.Status.Followers != subs {
			return fmt.Errorf("followers %v", a.Status.Followers)
		}
		resp, err := http.Get("http://" + listen + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("server not ready")
		}
		req, _ := http.NewRequest(http.MethodGet, "http://"+listen+"/actors/releases/followers", nil)
		req.Host = "load.fedforge.test"
		req.Header.Set("Accept", activitypub.AcceptActivity)
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !bytes.Contains(body, []byte(fmt.Sprintf(`"totalItems":%d`, subs))) {
			return fmt.Errorf("followers collection: %s", body)
		}
		return nil
	})
	time.Sleep(10 * time.Second) // let the exchanges settle (the actor's Update to 10,000 followers is queued)
	for name, cmd := range map[string]*exec.Cmd{"manager": mgr, "server": srv} {
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
		must(t, err)
		var rss, hwm string
		for _, l := range strings.Split(string(st), "\n") {
			if strings.HasPrefix(l, "VmRSS:") {
				rss = strings.TrimSpace(l[6:])
			}
			if strings.HasPrefix(l, "VmHWM:") {
				hwm = strings.TrimSpace(l[6:])
			}
		}
		t.Logf("%s with %d Subscriptions: RSS %s, peak RSS %s", name, subs, rss, hwm)
	}
}
