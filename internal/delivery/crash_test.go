package delivery

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/store"
)

// crashChildEnv carries the configuration of a child process of TestCrashKill9: the
// test binary re-executed to run one executor, which the parent kills with SIGKILL.
const crashChildEnv = "FEDFORGE_DELIVERY_CRASH_CHILD"

// crashChild is what the parent tells a child.
type crashChild struct {
	// Mode "server" opens the SQLite store itself (the in-process executor of
	// `fedforge server`); "job" runs RunJob against the parent's queue endpoint.
	Mode        string
	DSN         string
	QueueURL    string
	KeysDir     string
	Resolve     map[string]string
	Offset      time.Duration // added to the wall clock, so earlier children's leases have expired
	Concurrency int
}

// TestCrashChild is not a test: it is the body of a child process of TestCrashKill9.
func TestCrashChild(t *testing.T) {
	raw := os.Getenv(crashChildEnv)
	if raw == "" {
		t.Skip("helper process of TestCrashKill9")
	}
	var cc crashChild
	if err := json.Unmarshal([]byte(raw), &cc); err != nil {
		t.Fatal(err)
	}
	now := func() time.Time { return time.Now().Add(cc.Offset) }
	f := &fediverse{resolve: cc.Resolve}
	cfg := f.clientConfig()
	cfg.ReadTimeout, cfg.TotalTimeout = 5*time.Second, 10*time.Second
	actors := []JobActor{{ID: testActorID, Dir: "releases"}}
	ctx := context.Background()
	switch cc.Mode {
	case "job":
		if _, err := RunJob(ctx, JobOptions{QueueURL: cc.QueueURL, Token: testToken, KeysDir: cc.KeysDir, Actors: actors,
			Client: cfg, Concurrency: cc.Concurrency, Now: now}); err != nil {
			t.Fatal(err)
		}
	default:
		s, err := store.Open(ctx, cc.DSN)
		if err != nil {
			t.Fatal(err)
		}
		k, err := LoadDirKeys(cc.KeysDir, actors)
		if err != nil {
			t.Fatal(err)
		}
		e, err := NewExecutor(Config{Queue: s, Client: activitypub.NewClient(cfg), Keys: k, Now: now,
			Concurrency: cc.Concurrency, RequestTimeout: 10 * time.Second, Lease: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCrashKill9 kills a delivering process with SIGKILL at random points of a fan-out,
// 20 times, alternating the server's in-process executor (which has the SQLite file
// open) and a delivery Job (leasing through the server's queue endpoint), then lets a
// last run finish. Nothing may be lost, and no inbox may get an activity more than
// once, except the rows in flight at a kill (at most Concurrency per kill): the peer
// answered 2xx but the process died before recording it (at least once).
func TestCrashKill9(t *testing.T) {
	if os.Getenv(crashChildEnv) != "" {
		t.Skip("in a child")
	}
	t.Parallel()
	hosts, followers, kills, conc, shared := 20, 200, 20, 8, false
	if fullScale() {
		// The fan-out: 10,000 followers on 1,000 hosts, one POST per shared inbox.
		hosts, followers, shared = 1000, 10000, true
	}
	f := newFediverse(t, hosts, "crash.test", nil)
	for _, p := range f.peers {
		p.delay.Store(int64(2 * time.Millisecond)) // a fan-out takes long enough to be hit
	}
	s, dsn := newStore(t)
	queueURL := serveQueue(t, s, testToken)
	keysDir := filepath.Join(t.TempDir(), "keys")
	writeKeyDir(t, filepath.Join(keysDir, "releases"))
	to := f.followers(followers, shared)
	posts := len(Targets(to))
	pub := NewPublisher(s, nil)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 9))
	var ids []string
	realKills := 0
	run := func(round int, kill bool) {
		mode := "server"
		if round%2 == 1 {
			mode = "job"
		}
		cc := crashChild{Mode: mode, DSN: dsn, QueueURL: queueURL, KeysDir: keysDir, Resolve: f.resolve,
			Offset: time.Duration(round) * time.Hour, Concurrency: conc}
		raw, _ := json.Marshal(cc)
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+string(raw))
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		before := f.accepted()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		if !kill {
			select {
			case err := <-exited:
				if err != nil {
					t.Fatalf("final run: %v\n%s", err, out.String())
				}
			case <-time.After(2 * time.Minute):
				_ = cmd.Process.Kill()
				t.Fatal("final run did not finish in 2 minutes")
			}
			return
		}
		// Kill after a random number of 2xx answers, or (one round in four) at a random
		// moment of start-up, leasing or the first requests.
		target := before + 1 + rng.IntN(posts*3/4)
		deadline := time.Now().Add(30 * time.Second)
		if rng.IntN(4) == 0 {
			target, deadline = -1, time.Now().Add(time.Duration(rng.IntN(150))*time.Millisecond)
		}
		for time.Now().Before(deadline) && (target < 0 || f.accepted() < target) {
			select {
			case err := <-exited:
				t.Fatalf("round %d (%s): the child ended before it was killed (%v)\n%s", round, mode, err, out.String())
			case <-time.After(time.Millisecond):
			}
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err == nil {
			realKills++
		}
		<-exited
		t.Logf("round %d (%s): killed after %d deliveries", round, mode, f.accepted()-before)
	}
	for round := range kills {
		a := newActivity(fmt.Sprintf("crash-%02d", round), time.Now())
		ids = append(ids, a.ID)
		if err := pub.Publish(context.Background(), a, to); err != nil {
			t.Fatal(err)
		}
		run(round, true)
	}
	run(kills+1, false)
	// A failure in the last run (a peer closing an idle connection as it is reused) leaves
	// rows for later; deliver them in process with the clock moved on.
	c := &clock{t: time.Now().Add(time.Duration(kills+2) * time.Hour)}
	drain(t, newExecutor(t, s, f, c), s, c, time.Hour, 20)
	if realKills != kills {
		t.Fatalf("%d kills hit a running process, want %d", realKills, kills)
	}
	st := queueStats(t, s, c.Now())
	if st.Pending != 0 || st.Dead != 0 || st.Delivered != int64(kills*posts) {
		t.Fatalf("queue after the crashes: %+v, want %d delivered", st, kills*posts)
	}
	dups := f.checkTargets(t, ids, to, false)
	if dups > kills*conc {
		t.Fatalf("%d duplicate deliveries, more than the %d rows that can be in flight at %d kills", dups, kills*conc, kills)
	}
	t.Logf("%d kills, %d deliveries, 0 lost, %d duplicates (bound %d)", kills, kills*posts, dups, kills*conc)
}
