// Command inboxload measures any ActivityPub server's inbox the same way: Fedforge's
// `fedforge server` (or `make run`'s process) and a peer such as Fedify, side by side,
// with figures that can be compared (issue 17, docs/benchmarks.md).
//
// It starts a small key server on loopback that serves -actors sender actors (each with
// an RSA-2048 key for draft-cavage and RFC 9421 rsa-v1_5-sha256, and an Ed25519 Multikey
// for RFC 9421 ed25519), pre-signs -n distinct Create{Note} POSTs to -target (before the
// clock starts: signing is the sender's cost, not the receiver's), warms the target's key
// cache with one POST per actor, then writes the requests on -conns keep-alive
// connections, one at a time per connection, and reads every answer.
//
// It reports the target's throughput, its answers by status, latency percentiles, the
// target process's CPU per POST (user+system from /proc/<pid>/stat over the run; -pid),
// and the raw verify limit of the same key type measured in this process on the same
// machine right after the run: the CPU ratio "raw verify CPU / server CPU per POST" is
// the figure the issue sets a goal for (>= 0.5). The last line is the result as JSON.
//
// Every loop is bounded (-n requests, -conns connections, -timeout per answer), and
// every address must be on loopback: the tool refuses anything else.
//
//	go run ./hack/inboxload -target http://127.0.0.1:8080/inbox -pid $(pgrep -f 'fedforge local')
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fedforge/fedforge/internal/activitypub"
)

type config struct {
	target  string
	pid     int
	n       int
	conns   int
	actors  int
	sig     string
	keys    string
	timeout time.Duration
	label   string
	pprof   string
	pprofS  int
	pprofTo string
}

func main() {
	var c config
	flag.StringVar(&c.target, "target", "http://127.0.0.1:8080/inbox", "the inbox URL to POST to (loopback only)")
	flag.IntVar(&c.pid, "pid", 0, "the target server's process id, for its CPU per POST (0: not measured)")
	flag.IntVar(&c.n, "n", 20000, "number of distinct signed POSTs")
	flag.IntVar(&c.conns, "conns", 16, "keep-alive connections")
	flag.IntVar(&c.actors, "actors", 50, "sender actors served by the key server")
	flag.StringVar(&c.sig, "sig", "cavage", "signature: cavage (rsa-sha256), rfc9421-rsa (rsa-v1_5-sha256) or rfc9421-ed25519")
	flag.StringVar(&c.keys, "keys", "127.0.0.77:0", "loopback address of the key server")
	flag.DurationVar(&c.timeout, "timeout", 30*time.Second, "deadline for each answer")
	flag.StringVar(&c.label, "label", "", "a name for the target in the output (default: its host)")
	flag.StringVar(&c.pprof, "pprof", "", "the target's pprof base URL (fedforge --pprof-bind-address): a CPU profile is taken during the run")
	flag.IntVar(&c.pprofS, "pprof-seconds", 5, "length of that profile; keep it shorter than the run")
	flag.StringVar(&c.pprofTo, "pprof-out", "inbox.cpu.prof", "where that profile is written")
	flag.Parse()
	if err := run(c); err != nil {
		log.Fatalf("inboxload: %v", err)
	}
}

// result is the JSON line a script collects.
type result struct {
	Label          string         `json:"label"`
	Signature      string         `json:"signature"`
	Requests       int            `json:"requests"`
	Conns          int            `json:"conns"`
	Statuses       map[string]int `json:"statuses"`
	Seconds        float64        `json:"seconds"`
	PerSecond      float64        `json:"perSecond"`
	P50Ms          float64        `json:"p50Ms"`
	P99Ms          float64        `json:"p99Ms"`
	ServerCPUus    float64        `json:"serverCpuMicrosPerPost,omitempty"`
	RawVerifyCPUus float64        `json:"rawVerifyCpuMicros"`
	CPURatio       float64        `json:"cpuRatio,omitempty"`
	Cores          int            `json:"cores"`
	LoadAverage    string         `json:"loadAverage"`
}

func run(c config) error {
	tu, err := url.Parse(c.target)
	if err != nil || tu.Host == "" {
		return fmt.Errorf("target %q is not a URL", c.target)
	}
	if err := loopback(tu.Host); err != nil {
		return fmt.Errorf("target: %w", err)
	}
	if err := loopback(c.keys); err != nil {
		return fmt.Errorf("key server: %w", err)
	}
	if c.n < 1 || c.conns < 1 || c.actors < 1 {
		return errors.New("-n, -conns and -actors must be positive")
	}
	if c.label == "" {
		c.label = tu.Host
	}
	ks, err := startKeyServer(c.keys, c.actors)
	if err != nil {
		return err
	}
	defer ks.close()
	log.Printf("key server at %s with %d actors; signing %d requests (%s)", ks.base, c.actors, c.n, c.sig)
	warm, err := presign(c, tu, ks, c.actors, "warm")
	if err != nil {
		return err
	}
	reqs, err := presign(c, tu, ks, c.n, "load")
	if err != nil {
		return err
	}
	// Warm-up: one POST per actor, so the target fetches every key before the clock starts.
	w := send(tu.Host, warm, min(c.conns, len(warm)), c.timeout)
	if w.statuses["202"]+w.statuses["200"]+w.statuses["201"] != len(warm) {
		return fmt.Errorf("warm-up: answers %v (want every POST accepted: does the target allow fetching keys from %s?)", w.statuses, ks.base)
	}
	cpu0, err := procCPU(c.pid)
	if err != nil {
		return err
	}
	prof := make(chan error, 1)
	if c.pprof != "" {
		u, err := url.Parse(c.pprof)
		if err != nil {
			return fmt.Errorf("-pprof: %w", err)
		}
		if err := loopback(u.Host); err != nil {
			return fmt.Errorf("-pprof: %w", err)
		}
		go func() { prof <- fetchProfile(c.pprof, c.pprofS, c.pprofTo) }()
	} else {
		prof <- nil
	}
	r := send(tu.Host, reqs, c.conns, c.timeout)
	cpu1, err := procCPU(c.pid)
	if err != nil {
		return err
	}
	if err := <-prof; err != nil {
		return err
	}
	raw := rawVerifyCPU(c.sig, 20000)
	res := result{
		Label: c.label, Signature: c.sig, Requests: c.n, Conns: c.conns, Statuses: r.statuses,
		Seconds: r.elapsed.Seconds(), PerSecond: float64(c.n) / r.elapsed.Seconds(),
		P50Ms: ms(percentile(r.latencies, 0.50)), P99Ms: ms(percentile(r.latencies, 0.99)),
		RawVerifyCPUus: us(raw), Cores: runtime.NumCPU(), LoadAverage: loadAverage(),
	}
	if c.pid != 0 {
		per := (cpu1 - cpu0) / time.Duration(c.n)
		res.ServerCPUus = us(per)
		if per > 0 {
			res.CPURatio = float64(raw) / float64(per)
		}
	}
	fmt.Printf("%s: %d POSTs (%s) on %d connections in %.2f s = %.0f/s; answers %v; latency p50 %.1f ms p99 %.1f ms\n",
		res.Label, c.n, c.sig, c.conns, res.Seconds, res.PerSecond, res.Statuses, res.P50Ms, res.P99Ms)
	if c.pid != 0 {
		fmt.Printf("%s: server CPU per POST %.0f µs; raw verify CPU %.0f µs; CPU ratio %.2f (cores %d, load %s)\n",
			res.Label, res.ServerCPUus, res.RawVerifyCPUus, res.CPURatio, res.Cores, res.LoadAverage)
	}
	out, _ := json.Marshal(res)
	fmt.Printf("RESULT %s\n", out)
	return nil
}

// fetchProfile writes a CPU profile of the target, taken for seconds, to path.
func fetchProfile(base string, seconds int, path string) error {
	resp, err := http.Get(strings.TrimRight(base, "/") + "/debug/pprof/profile?seconds=" + strconv.Itoa(seconds))
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("profile: %s", resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	log.Printf("CPU profile of the target (%d s) in %s", seconds, path)
	return f.Close()
}

// loopback refuses any host:port that is not a literal loopback address: a load tool
// must never be pointed at someone else's server.
func loopback(hostport string) error {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%q is not a loopback address (127.0.0.0/8 or ::1)", hostport)
	}
	return nil
}

// keyServer serves the sender actors' documents.
type keyServer struct {
	base string
	rsa  []*rsa.PrivateKey
	ed   []ed25519.PrivateKey
	srv  *http.Server
}

func (k *keyServer) actorID(i int) string { return k.base + "/users/u" + strconv.Itoa(i) }

func startKeyServer(addr string, n int) (*keyServer, error) {
	k := &keyServer{rsa: make([]*rsa.PrivateKey, n), ed: make([]ed25519.PrivateKey, n)}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rk, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				errs <- err
				return
			}
			_, ek, err := ed25519.GenerateKey(rand.Reader)
			if err != nil {
				errs <- err
				return
			}
			k.rsa[i], k.ed[i] = rk, ek
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, fmt.Errorf("generating keys: %w", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("key server: %w", err)
	}
	k.base = "http://" + ln.Addr().String()
	docs := make(map[string][]byte, n)
	for i := range n {
		id := k.actorID(i)
		der, err := x509.MarshalPKIXPublicKey(&k.rsa[i].PublicKey)
		if err != nil {
			return nil, err
		}
		doc := map[string]any{
			"@context": []any{"https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1",
				map[string]any{"Multikey": "https://w3id.org/security#Multikey",
					"assertionMethod":    map[string]any{"@id": "https://w3id.org/security#assertionMethod", "@type": "@id", "@container": "@set"},
					"controller":         map[string]any{"@id": "https://w3id.org/security#controller", "@type": "@id"},
					"publicKeyMultibase": "https://w3id.org/security#publicKeyMultibase"}},
			"id": id, "type": "Person", "preferredUsername": "u" + strconv.Itoa(i),
			"inbox": id + "/inbox", "outbox": id + "/outbox",
			"publicKey": map[string]any{"id": id + "#main-key", "owner": id,
				"publicKeyPem": string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))},
			"assertionMethod": []any{map[string]any{"id": id + "#ed25519-key", "type": "Multikey", "controller": id,
				"publicKeyMultibase": activitypub.EncodeMultibaseEd25519(k.ed[i].Public().(ed25519.PublicKey))}},
		}
		docs["/users/u"+strconv.Itoa(i)], _ = json.Marshal(doc)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /users/{name}", func(w http.ResponseWriter, r *http.Request) {
		b, ok := docs["/users/"+r.PathValue("name")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/activity+json")
		_, _ = w.Write(b)
	})
	mux.HandleFunc("POST /users/{name}/inbox", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
		w.WriteHeader(http.StatusAccepted)
	})
	k.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = k.srv.Serve(ln) }()
	return k, nil
}

func (k *keyServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = k.srv.Shutdown(ctx)
}

// presign returns n requests as HTTP/1.1 bytes, signed by the key server's actors in turn.
func presign(c config, target *url.URL, ks *keyServer, n int, tag string) ([][]byte, error) {
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	out := make([][]byte, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, runtime.NumCPU())
	for range runtime.NumCPU() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				b, err := signed(c.sig, target, ks, i%len(ks.rsa), fmt.Sprintf("%s-%s-%d", tag, run, i))
				if err != nil {
					errs <- err
					return
				}
				out[i] = b
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	return out, nil
}

func signed(sig string, target *url.URL, ks *keyServer, a int, note string) ([]byte, error) {
	actor := ks.actorID(a)
	body, _ := json.Marshal(map[string]any{
		"@context": "https://www.w3.org/ns/activitystreams",
		"id":       actor + "/notes/" + note + "/activity", "type": "Create", "actor": actor,
		"to": []string{"https://www.w3.org/ns/activitystreams#Public"}, "cc": []string{actor + "/followers"},
		"object": map[string]any{"id": actor + "/notes/" + note, "type": "Note", "attributedTo": actor,
			"to": []string{"https://www.w3.org/ns/activitystreams#Public"}, "content": "<p>load " + note + "</p>",
			"published": time.Now().UTC().Format(time.RFC3339)},
	})
	req, err := http.NewRequest(http.MethodPost, target.String(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/activity+json")
	req.Header.Set("Accept", "application/activity+json")
	switch sig {
	case "cavage":
		err = activitypub.SignCavage(req, body, ks.rsa[a], actor+"#main-key", activitypub.CavageOptions{})
	case "rfc9421-rsa":
		err = activitypub.SignRFC9421(activitypub.Message{Request: req}, body, ks.rsa[a],
			activitypub.RFC9421Options{KeyID: actor + "#main-key", Alg: activitypub.AlgRSAv15SHA256})
	case "rfc9421-ed25519":
		err = activitypub.SignRFC9421(activitypub.Message{Request: req}, body, ks.ed[a],
			activitypub.RFC9421Options{KeyID: actor + "#ed25519-key", Alg: activitypub.AlgEd25519RFC})
	default:
		return nil, fmt.Errorf("-sig %q: want cavage, rfc9421-rsa or rfc9421-ed25519", sig)
	}
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	var b bytes.Buffer
	if err := req.Write(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

type sent struct {
	statuses  map[string]int
	latencies []time.Duration
	elapsed   time.Duration
}

// send writes reqs on conns keep-alive connections to addr, one request in flight per
// connection, and reads every answer. A broken connection is redialled once per request.
func send(addr string, reqs [][]byte, conns int, timeout time.Duration) sent {
	var (
		next      atomic.Int64
		mu        sync.Mutex
		statuses  = map[string]int{}
		latencies = make([]time.Duration, len(reqs))
		wg        sync.WaitGroup
	)
	start := time.Now()
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c net.Conn
			var br *bufio.Reader
			defer func() {
				if c != nil {
					c.Close()
				}
			}()
			for i := int(next.Add(1) - 1); i < len(reqs); i = int(next.Add(1) - 1) {
				t0 := time.Now()
				status := "error"
				for attempt := 0; attempt < 2 && status == "error"; attempt++ {
					if c == nil {
						var err error
						if c, err = net.DialTimeout("tcp", addr, timeout); err != nil {
							c = nil
							continue
						}
						br = bufio.NewReader(c)
					}
					_ = c.SetDeadline(time.Now().Add(timeout))
					if _, err := c.Write(reqs[i]); err == nil {
						if resp, err := http.ReadResponse(br, nil); err == nil {
							_, _ = io.Copy(io.Discard, resp.Body)
							resp.Body.Close()
							status = strconv.Itoa(resp.StatusCode)
							if resp.Close {
								c.Close()
								c = nil
							}
							continue
						}
					}
					c.Close()
					c = nil
				}
				latencies[i] = time.Since(t0)
				mu.Lock()
				statuses[status]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return sent{statuses: statuses, latencies: latencies, elapsed: time.Since(start)}
}

// procCPU is the user+system CPU time of process pid (every thread), from
// /proc/<pid>/stat in clock ticks (USER_HZ, 100 on Linux).
func procCPU(pid int) (time.Duration, error) {
	if pid == 0 {
		return 0, nil
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("target process: %w", err)
	}
	// The command name (field 2) may hold spaces; fields after its closing ')' are fixed.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: utime/stime not numbers", pid)
	}
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}

// rawVerifyCPU is the CPU one signature verification of sig's key type costs on this
// machine, measured with every core busy (as the server is during the run): m
// verifications spread over NumCPU goroutines, their process CPU divided by m.
func rawVerifyCPU(sig string, m int) time.Duration {
	msg := sha256.Sum256([]byte("signing string"))
	var verify func()
	if sig == "rfc9421-ed25519" {
		_, k, _ := ed25519.GenerateKey(rand.Reader)
		s := ed25519.Sign(k, msg[:])
		pub := k.Public().(ed25519.PublicKey)
		verify = func() { _ = ed25519.Verify(pub, msg[:], s) }
	} else {
		k, _ := rsa.GenerateKey(rand.Reader, 2048)
		s, _ := rsa.SignPKCS1v15(nil, k, crypto.SHA256, msg[:])
		verify = func() { _ = rsa.VerifyPKCS1v15(&k.PublicKey, crypto.SHA256, msg[:], s) }
	}
	cpu0, _ := procCPU(os.Getpid())
	var next atomic.Int64
	var wg sync.WaitGroup
	for range runtime.NumCPU() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(m) {
				verify()
			}
		}()
	}
	wg.Wait()
	cpu1, _ := procCPU(os.Getpid())
	return (cpu1 - cpu0) / time.Duration(m)
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}
