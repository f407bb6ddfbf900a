package app

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
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
// correctness (nothing lost), never timings. They stay serial (no t.Parallel): serial
// tests run before the parallel ones start, so their figures are not shared with them.
func loadOnly(t *testing.T) {
	if os.Getenv("FEDFORGE_LOAD") == "" {
		t.Skip("load measurement: run hack/load-server.sh (FEDFORGE_LOAD=1)")
	}
}

// TestLoadInboxThroughput: verified signed POSTs per second into a real instance's
// shared inbox, beside the raw RSA-2048 verify rate measured in the same run with the
// same concurrency.
//
// The server (with the rest of the instance pair) runs in this process; the load
// generator is this test binary started again as a child process
// (TestLoadInboxClient), so that the CPU each uses is measured separately: this
// process's CPU time (getrusage, every thread) is an upper bound of the server's,
// the child reports its own. The requests are signed beforehand and written as
// HTTP/1.1 bytes, so that the generator only writes them and reads the answers on
// keep-alive connections. FEDFORGE_LOAD_CLIENT_CPUS (a taskset list) pins the
// generator; hack/load-server.sh pins this process with taskset too (--pin), so that
// server and raw verify get one core and the generator the other.
func TestLoadInboxThroughput(t *testing.T) {
	loadOnly(t)
	n := 20000
	if v, err := strconv.Atoi(os.Getenv("FEDFORGE_LOAD_INBOX_N")); err == nil && v > 0 {
		n = v
	}
	workers := 16
	if v, err := strconv.Atoi(os.Getenv("FEDFORGE_LOAD_INBOX_CONNS")); err == nil && v > 0 {
		workers = v
	}
	p := newPair(t)
	p.actor(t, p.alpha, "releases", "releases", false)
	p.actor(t, p.beta, "watcher", "watcher", false)
	key := actorKey(t, p, "beta", "watcher")
	betaID := p.beta.base() + "/actors/watcher"

	// Pre-sign every request (in parallel: RSA-2048 signing costs about 1.4 ms).
	start := time.Now()
	wire := make([][]byte, n+1)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i <= n; i = int(next.Add(1) - 1) {
				body := []byte(fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","id":"%s/notes/%d/activity","type":"Create","actor":%q,"to":["https://www.w3.org/ns/activitystreams#Public"],"object":{"id":"%s/notes/%d","type":"Note","content":"load %d","attributedTo":%q}}`, p.beta.base(), i, betaID, p.beta.base(), i, i, betaID))
				r, _ := http.NewRequest(http.MethodPost, "http://"+alphaHost+"/inbox", bytes.NewReader(body))
				r.Header.Set("Content-Type", "application/activity+json")
				if err := activitypub.SignCavage(r, body, key, betaID+"#main-key", activitypub.CavageOptions{}); err != nil {
					t.Error(err)
					return
				}
				var b bytes.Buffer
				if err := r.Write(&b); err != nil {
					t.Error(err)
					return
				}
				wire[i] = b.Bytes()
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	t.Logf("signed %d requests in %s", n+1, time.Since(start).Round(time.Millisecond))
	warm, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(wire[n])))
	must(t, err)
	warm.RequestURI, warm.URL.Scheme, warm.URL.Host = "", "http", p.alpha.listen
	resp, err := http.DefaultClient.Do(warm) // warms the key cache
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("warm-up POST: %d", resp.StatusCode)
	}
	var file bytes.Buffer
	for _, w := range wire[:n] {
		file.Write(binary.AppendUvarint(nil, uint64(len(w))))
		file.Write(w)
	}
	reqFile := filepath.Join(t.TempDir(), "requests")
	must(t, os.WriteFile(reqFile, file.Bytes(), 0o600))

	// The generator: this binary again, pinned when asked.
	args := []string{os.Args[0], "-test.run=^TestLoadInboxClient$", "-test.count=1"}
	if cpus := os.Getenv("FEDFORGE_LOAD_CLIENT_CPUS"); cpus != "" {
		args = append([]string{"taskset", "-c", cpus}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "FEDFORGE_LOAD_CLIENT="+reqFile, "FEDFORGE_LOAD_ADDR="+p.alpha.listen, fmt.Sprintf("FEDFORGE_LOAD_WORKERS=%d", workers))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	must(t, err)
	stdout, err := cmd.StdoutPipe()
	must(t, err)
	must(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := bufio.NewScanner(stdout)
	waitLine := func(prefix string) string {
		for lines.Scan() {
			if rest, ok := strings.CutPrefix(lines.Text(), prefix); ok {
				return rest
			}
		}
		t.Fatalf("load generator ended before %q: %v", prefix, lines.Err())
		return ""
	}
	waitLine("load-client ready")
	cpu0, mach0 := processCPU(t), machineCPU(t)
	_, err = io.WriteString(stdin, "go\n")
	must(t, err)
	var res clientResult
	must(t, json.Unmarshal([]byte(waitLine("load-client result ")), &res))
	cpu1, mach1 := processCPU(t), machineCPU(t)
	must(t, cmd.Wait())
	if res.Accepted != n {
		t.Errorf("%d of %d POSTs accepted (other answers: %v)", res.Accepted, n, res.Other)
	}
	elapsed := time.Duration(res.ElapsedNs)
	inboxRate := float64(n) / elapsed.Seconds()
	serverCPU := cpu1 - cpu0
	busy, cores, perCore := mach1.busySince(mach0)

	// The raw limit: RSA-2048 PKCS#1 v1.5 verifications with the same concurrency, in
	// this process (so with the server's cores).
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	must(t, err)
	digest := sha256.Sum256([]byte("signing string"))
	sig, err := rsa.SignPKCS1v15(nil, rk, crypto.SHA256, digest[:])
	must(t, err)
	const m = 60000
	next.Store(0)
	rawCPU0 := processCPU(t)
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
	rawElapsed := time.Since(start)
	rawCPU := processCPU(t) - rawCPU0
	rawRate := float64(m) / rawElapsed.Seconds()
	rawPerVerify := rawCPU / m
	serverPerReq := serverCPU / time.Duration(n)
	clientPerReq := time.Duration(res.CPUNs) / time.Duration(n)
	t.Logf("server process CPUs %s (GOMAXPROCS %d), load generator CPUs %q; load average %s", cpusAllowed(), runtime.GOMAXPROCS(0), os.Getenv("FEDFORGE_LOAD_CLIENT_CPUS"), loadAverage())
	t.Logf("inbox: %d signed POSTs, %d connections, in %s = %.0f/s; machine busy %.2f of %d cores (%s)", n, workers, elapsed.Round(time.Millisecond), inboxRate, busy, cores, perCore)
	t.Logf("CPU per POST: server process %s, load generator %s", serverPerReq.Round(100*time.Nanosecond), clientPerReq.Round(100*time.Nanosecond))
	t.Logf("raw RSA-2048 verify, %d goroutines: %d in %s = %.0f/s, CPU per verify %s", workers, m, rawElapsed.Round(time.Millisecond), rawRate, rawPerVerify.Round(100*time.Nanosecond))
	t.Logf("ratio wall clock %.2f; ratio server CPU only %.2f (raw CPU per verify / server CPU per POST)", inboxRate/rawRate, float64(rawPerVerify)/float64(serverPerReq))
}

// clientResult is what the load generator reports.
type clientResult struct {
	Accepted  int         `json:"accepted"`
	Other     map[int]int `json:"other,omitempty"` // status (0: transport error) -> count
	ElapsedNs int64       `json:"elapsedNs"`
	CPUNs     int64       `json:"cpuNs"` // the generator's own CPU (user+system) while sending
}

// TestLoadInboxClient is the load generator of TestLoadInboxThroughput, run in a
// child process: it reads pre-signed requests, opens its keep-alive connections,
// says "ready", waits for "go" on stdin, sends every request once (one at a time per
// connection) and prints its result.
func TestLoadInboxClient(t *testing.T) {
	file := os.Getenv("FEDFORGE_LOAD_CLIENT")
	if file == "" {
		t.Skip("the load generator of TestLoadInboxThroughput")
	}
	data, err := os.ReadFile(file)
	must(t, err)
	var reqs [][]byte
	for len(data) > 0 {
		l, k := binary.Uvarint(data)
		reqs, data = append(reqs, data[k:k+int(l)]), data[k+int(l):]
	}
	workers, err := strconv.Atoi(os.Getenv("FEDFORGE_LOAD_WORKERS"))
	must(t, err)
	conns := make([]net.Conn, workers)
	for i := range conns {
		// FEDFORGE_LOAD_ADDR may list several replicas (comma-separated): connections are
		// spread over them in turn, as a Service spreads them (TestLoadReplicas).
		addrs := strings.Split(os.Getenv("FEDFORGE_LOAD_ADDR"), ",")
		conns[i], err = net.Dial("tcp", addrs[i%len(addrs)])
		must(t, err)
		defer conns[i].Close()
	}
	fmt.Println("load-client ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	cpu0 := processCPU(t)
	start := time.Now()
	var (
		next     atomic.Int64
		accepted atomic.Int64
		mu       sync.Mutex
		other    = map[int]int{}
		wg       sync.WaitGroup
	)
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			br := bufio.NewReader(c)
			for i := int(next.Add(1) - 1); i < len(reqs); i = int(next.Add(1) - 1) {
				status := 0
				if _, err := c.Write(reqs[i]); err == nil {
					if resp, err := http.ReadResponse(br, nil); err == nil {
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						status = resp.StatusCode
					}
				}
				if status == http.StatusAccepted {
					accepted.Add(1)
					continue
				}
				mu.Lock()
				other[status]++
				mu.Unlock()
				if status == 0 {
					return // the connection is broken
				}
			}
		}()
	}
	wg.Wait()
	out, _ := json.Marshal(clientResult{Accepted: int(accepted.Load()), Other: other, ElapsedNs: int64(time.Since(start)), CPUNs: int64(processCPU(t) - cpu0)})
	fmt.Printf("load-client result %s\n", out)
}

// processCPU is the user+system CPU time of this whole process (every thread).
func processCPU(t *testing.T) time.Duration {
	var ru syscall.Rusage
	must(t, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuTimes are the jiffies of /proc/stat: all cores ("cpu") and each core ("cpuN").
type cpuTimes map[string]struct{ busy, total uint64 }

func machineCPU(t *testing.T) cpuTimes {
	b, err := os.ReadFile("/proc/stat")
	must(t, err)
	c := cpuTimes{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 || !strings.HasPrefix(f[0], "cpu") {
			continue
		}
		var busy, total uint64
		for i, v := range f[1:] {
			n, _ := strconv.ParseUint(v, 10, 64)
			total += n
			if i != 3 && i != 4 { // idle, iowait
				busy += n
			}
		}
		c[f[0]] = struct{ busy, total uint64 }{busy, total}
	}
	return c
}

// busySince returns how many cores were busy on average since c0, of how many, and
// each core's busy fraction.
func (c cpuTimes) busySince(c0 cpuTimes) (float64, int, string) {
	frac := func(k string) float64 {
		if c[k].total == c0[k].total {
			return 0
		}
		return float64(c[k].busy-c0[k].busy) / float64(c[k].total-c0[k].total)
	}
	var each []string
	n := 0
	for ; ; n++ {
		k := fmt.Sprintf("cpu%d", n)
		if _, ok := c[k]; !ok {
			break
		}
		each = append(each, fmt.Sprintf("%s %.2f", k, frac(k)))
	}
	return frac("cpu") * float64(n), n, strings.Join(each, ", ")
}

func cpusAllowed() string {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Cpus_allowed_list:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

func loadAverage() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// fakePeer is a real HTTP server on 127.0.0.4 standing in for a remote instance with
// many actors (one shared key), whose shared inbox records when each Accept arrives.
type fakePeer struct {
	host, addr string
	key        *rsa.PrivateKey
	pem        string
	mu         sync.Mutex
	accepted   map[string]time.Time // Follow id -> Accept arrival
	creates    int                  // Create activities received (one per POST)
	// personal, when set, leaves the shared inbox out of the users' documents, so that a
	// fan-out to them is one POST per follower (TestLoadAPIWrites, TestLoadReplicas).
	personal atomic.Bool
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
		if fp.personal.Load() {
			delete(doc, "endpoints")
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
		} else if a.Type == "Create" {
			fp.mu.Lock()
			fp.creates++
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
