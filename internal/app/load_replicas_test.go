package app

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
)

// TestLoadReplicas (issue 15, docs/benchmarks.md): the same signed inbox load into one
// server on SQLite, one on PostgreSQL and three replicas sharing PostgreSQL (leader
// election on), measured in one run on this machine. Every server runs RunServer in this
// process against one real kube-apiserver; the load generator is this binary as a child
// process (TestLoadInboxClient), its connections spread over the replicas as a Service
// would. It reports POSTs/s and this process's CPU per POST, and asserts only that every
// POST was accepted. Then 1,000 remote actors (a fake peer's users, personal inboxes, so
// 1,000 POSTs) follow an actor of the server, through the replicas in turn, and a GitLab
// release webhook is timed until every follower has received the Create: the fan-out
// time of each setup.
func TestLoadReplicas(t *testing.T) {
	loadOnly(t)
	base := os.Getenv("FEDFORGE_TEST_POSTGRES_DSN")
	if base == "" {
		t.Fatal("FEDFORGE_TEST_POSTGRES_DSN is not set (hack/load-server.sh sets it)")
	}
	n := 10000
	p := newPair(t)
	p.actor(t, p.beta, "watcher", "watcher", false)
	key := actorKey(t, p, "beta", "watcher")
	watcher := p.beta.base() + "/actors/watcher"
	pg := freshSchema(t, base)

	type setup struct {
		name     string
		replicas int
		dsn      string
	}
	setups := []setup{
		{"sqlite-1", 1, "sqlite://" + filepath.Join(t.TempDir(), "load.db")},
		{"postgres-1", 1, pg},
		{"postgres-3", 3, freshSchema(t, base)},
	}
	results := map[string]string{}
	// Each setup's followers: a fake peer of its own (the same user names), with
	// personal inboxes only; the servers resolve its host to it.
	const fans = 1000
	var crowds []*fakePeer
	for range setups {
		fp := newFakePeer(t)
		fp.personal.Store(true)
		crowds = append(crowds, fp)
	}
	for i, su := range setups {
		ns := fmt.Sprintf("load%d", i)
		host := ns + ".fedforge.test"
		ctx, cancel := context.WithCancel(context.Background())
		must(t, p.k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
		spec := fedv1.FederationServerSpec{Host: host, Scheme: fedv1.SchemeHTTP, AllowedPrivateCIDRs: []string{"127.0.0.0/8"}, Replicas: int32(su.replicas)}
		if strings.HasPrefix(su.dsn, "postgres") {
			must(t, p.k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db"}, StringData: map[string]string{"dsn": su.dsn}}))
			spec.Storage = &fedv1.ServerStorage{Postgres: &fedv1.PostgresStorage{DSNSecretRef: fedv1.SecretKeyReference{Name: "db"}}}
		}
		must(t, p.k8s.Create(ctx, &fedv1.FederationServer{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "forge"}, Spec: spec}))
		var listens []string
		done := make(chan struct{}, su.replicas)
		for r := range su.replicas {
			listen := freeAddr(t, fmt.Sprintf("127.0.1.%d", 10*i+r+1))
			listens = append(listens, listen)
			go func() {
				defer func() { done <- struct{}{} }()
				err := RunServer(ctx, p.cfg, ServerOptions{Server: ns + "/forge", Listen: listen, StoreDSN: su.dsn,
					LeaderElection: su.replicas > 1, AllowedCIDRs: []string{"127.0.0.0/8"}, AllowHTTP: true,
					Resolve: []string{betaHost + "=" + p.beta.listen, crowds[i].host + "=" + crowds[i].addr}, MetricsAddr: "0", FeedTick: time.Minute, StatusInterval: time.Minute})
				if err != nil && ctx.Err() == nil {
					t.Errorf("%s replica %d: %v", su.name, r, err)
				}
			}()
		}
		for _, l := range listens {
			eventually(t, 60*time.Second, func() error {
				resp, err := http.Get("http://" + l + "/readyz")
				if err != nil {
					return err
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					return fmt.Errorf("%s %s: /readyz %d", su.name, l, resp.StatusCode)
				}
				return nil
			})
		}
		// Pre-signed requests, written as HTTP/1.1 bytes for the child generator; one
		// POST per replica first warms each replica's key cache.
		var file bytes.Buffer
		for k := range n + su.replicas {
			body := []byte(fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","id":"%[1]s/notes/%[2]s-%[3]d/activity","type":"Create","actor":%[1]q,"to":["https://www.w3.org/ns/activitystreams#Public"],"object":{"id":"%[1]s/notes/%[2]s-%[3]d","type":"Note","content":"load %[3]d","attributedTo":%[1]q}}`, watcher, su.name, k))
			r, _ := http.NewRequest(http.MethodPost, "http://"+host+"/inbox", bytes.NewReader(body))
			r.Header.Set("Content-Type", "application/activity+json")
			must(t, activitypub.SignCavage(r, body, key, watcher+"#main-key", activitypub.CavageOptions{}))
			if k >= n { // warm-up, sent directly to replica k-n
				r.URL = &url.URL{Scheme: "http", Host: listens[k-n], Path: "/inbox"}
				r.Host = host
				r.Body = io.NopCloser(bytes.NewReader(body))
				resp, err := http.DefaultClient.Do(r)
				must(t, err)
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					t.Fatalf("%s warm-up: %d", su.name, resp.StatusCode)
				}
				continue
			}
			var b bytes.Buffer
			must(t, r.Write(&b))
			file.Write(binary.AppendUvarint(nil, uint64(b.Len())))
			file.Write(b.Bytes())
		}
		reqFile := filepath.Join(t.TempDir(), su.name+".requests")
		must(t, os.WriteFile(reqFile, file.Bytes(), 0o600))
		cmd := exec.Command(os.Args[0], "-test.run=^TestLoadInboxClient$", "-test.count=1")
		cmd.Env = append(os.Environ(), "FEDFORGE_LOAD_CLIENT="+reqFile, "FEDFORGE_LOAD_ADDR="+strings.Join(listens, ","), "FEDFORGE_LOAD_WORKERS=16")
		cmd.Stderr = os.Stderr
		stdin, err := cmd.StdinPipe()
		must(t, err)
		stdout, err := cmd.StdoutPipe()
		must(t, err)
		must(t, cmd.Start())
		lines := bufio.NewScanner(stdout)
		wait := func(prefix string) string {
			for lines.Scan() {
				if rest, ok := strings.CutPrefix(lines.Text(), prefix); ok {
					return rest
				}
			}
			t.Fatalf("load generator ended before %q", prefix)
			return ""
		}
		wait("load-client ready")
		cpu0 := processCPU(t)
		_, err = io.WriteString(stdin, "go\n")
		must(t, err)
		var res clientResult
		must(t, json.Unmarshal([]byte(wait("load-client result ")), &res))
		cpu1 := processCPU(t)
		must(t, cmd.Wait())
		if res.Accepted != n {
			t.Errorf("%s: %d of %d POSTs accepted (other answers: %v)", su.name, res.Accepted, n, res.Other)
		}
		el := time.Duration(res.ElapsedNs)
		results[su.name] = fmt.Sprintf("%.0f POSTs/s, server-process CPU %s per POST", float64(n)/el.Seconds(), ((cpu1 - cpu0) / time.Duration(n)).Round(time.Microsecond))
		t.Logf("%s: %d signed POSTs on 16 connections over %d replica(s) in %s = %s (load average %s)", su.name, n, su.replicas, el.Round(time.Millisecond), results[su.name], loadAverage())
		fanOut := fanOutTime(t, p, ns, host, crowds[i], listens, fans)
		t.Logf("%s: fan-out of one release to %d followers (personal inboxes) over %d replica(s): %s (load average %s)", su.name, fans, su.replicas, fanOut.Round(10*time.Millisecond), loadAverage())
		cancel()
		for range su.replicas {
			<-done
		}
	}
}

// fanOutTime makes an actor with a GitLab source on the server of namespace ns, has the
// crowd's users u0..u<n-1> follow it through the replicas, and returns the time from the
// release webhook (to the first replica) to the last follower's Create.
func fanOutTime(t *testing.T, p *pair, ns, host string, crowd *fakePeer, listens []string, n int) time.Duration {
	t.Helper()
	ctx := context.Background()
	must(t, p.k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "hooks"}, StringData: map[string]string{"gitlab": "gl-token"}}))
	must(t, p.k8s.Create(ctx, &fedv1.FederatedActor{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "releases"},
		Spec: fedv1.FederatedActorSpec{ServerRef: fedv1.LocalObjectReference{Name: "forge"}, Type: fedv1.ActorApplication, PreferredUsername: "releases",
			Sources: []fedv1.EventSource{{Name: "gitlab", Type: fedv1.SourceGitLab, SecretRef: &fedv1.SecretKeyReference{Name: "hooks", Key: "gitlab"}}}}}))
	for _, l := range listens {
		waitServed(t, instance{ns: ns, host: host, listen: l}, "releases")
	}
	followCrowd(t, crowd, listens, host, "http://"+host+"/actors/releases", 0, n)
	eventually(t, 2*time.Minute, func() error {
		var a fedv1.FederatedActor
		if err := p.k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "releases"}, &a); err != nil {
			return err
		}
		if a.Status.Followers == nil || int(*a.Status.Followers) != n {
			return fmt.Errorf("%s: followers %v, want %d", ns, a.Status.Followers, n)
		}
		return nil
	})
	body, _ := gitlabReleaseBody(t, "v8.0.0")
	before, start := crowd.createsSeen(), time.Now()
	if c := postHook(t, listens[0], host, "releases", "gitlab", body, "gl-token"); c != http.StatusAccepted {
		t.Fatalf("%s: release webhook: %d", ns, c)
	}
	for crowd.createsSeen()-before < n {
		if time.Since(start) > 5*time.Minute {
			t.Fatalf("%s: %d of %d followers got the release within 5 min", ns, crowd.createsSeen()-before, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}
