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
	"encoding/json"
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
	"strconv"
	"strings"
	"time"
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
