package app

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
)

// TestLoadAPIWrites (issue 15, docs/benchmarks.md): the kube-apiserver writes a published
// activity costs, with 10 and then 1,000 followers (each its own remote actor with a
// personal inbox, so 1,000 POSTs). The writes are read from the real kube-apiserver's own
// metrics (apiserver_request_total, every client: the manager and both servers in this
// process), before the release webhook and after the fan-out has reached every follower and
// the API server has been quiet for 3 s. The goal is O(1) in followers; it asserts only that
// every follower got the release, and reports the writes by verb and resource.
func TestLoadAPIWrites(t *testing.T) {
	loadOnly(t)
	fp := newFakePeer(t)
	fp.personal.Store(true)
	p := newPair(t, fp.host+"="+fp.addr)
	ctx := context.Background()
	must(t, p.k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "alpha", Name: "hooks"},
		StringData: map[string]string{"gitlab": "gl-token"}}))
	p.actor(t, p.alpha, "releases", "releases", false)
	var a fedv1.FederatedActor
	must(t, p.k8s.Get(ctx, types.NamespacedName{Namespace: "alpha", Name: "releases"}, &a))
	patch := client.MergeFrom(a.DeepCopy())
	a.Spec.Sources = []fedv1.EventSource{{Name: "gitlab", Type: fedv1.SourceGitLab, SecretRef: &fedv1.SecretKeyReference{Name: "hooks", Key: "gitlab"}}}
	must(t, p.k8s.Patch(ctx, &a, patch))
	alphaID := p.alpha.base() + "/actors/releases"

	followed := 0
	var lines []string
	for _, n := range []int{10, 1000} {
		followCrowd(t, fp, []string{p.alpha.listen}, alphaHost, alphaID, followed, n)
		followed = n
		eventually(t, 2*time.Minute, func() error {
			var a fedv1.FederatedActor
			if err := p.k8s.Get(ctx, types.NamespacedName{Namespace: "alpha", Name: "releases"}, &a); err != nil {
				return err
			}
			if a.Status.Followers == nil || int(*a.Status.Followers) != n {
				return fmt.Errorf("followers %v, want %d", a.Status.Followers, n)
			}
			return nil
		})
		// The servers write their status every second here (StatusInterval) and the
		// manager renews its Lease: a background measured over 10 s first, and taken off.
		apiQuiet(t, p.cfg)
		base0, t0 := apiRequests(t, p.cfg), time.Now()
		time.Sleep(10 * time.Second)
		before, t1 := apiRequests(t, p.cfg), time.Now()
		creates := fp.createsSeen()
		body, _ := gitlabReleaseBody(t, fmt.Sprintf("v9.%d.0", n))
		if c := postHook(t, p.alpha.listen, alphaHost, "releases", "gitlab", body, "gl-token"); c != http.StatusAccepted {
			t.Fatalf("hook: %d", c)
		}
		eventually(t, 3*time.Minute, func() error {
			if got := fp.createsSeen() - creates; got < n {
				return fmt.Errorf("%d of %d followers got the release", got, n)
			}
			return nil
		})
		after := apiQuiet(t, p.cfg)
		span := time.Since(t1)
		background, _ := writesBetween(base0, before)
		bg := float64(background) * span.Seconds() / t1.Sub(t0).Seconds()
		w, by := writesBetween(before, after)
		lines = append(lines, fmt.Sprintf("%d followers: %d API writes in the %s from the webhook to quiet (%s), of which about %.0f are the background (%d in %s before): %.0f for the activity",
			n, w, span.Round(100*time.Millisecond), strings.Join(by, ", "), bg, background, t1.Sub(t0).Round(100*time.Millisecond), float64(w)-bg))
		t.Log(lines[len(lines)-1])
	}
}

// followCrowd sends Follows of target from the fake peer's users u<from>..u<to-1> (16 at
// a time, each signed, spread over listens as a Service would) and waits until each is
// Accepted.
func followCrowd(t *testing.T, fp *fakePeer, listens []string, host, target string, from, to int) {
	t.Helper()
	var next atomic.Int64
	next.Store(int64(from))
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= to {
					return
				}
				actor := fmt.Sprintf("http://%s/users/u%d", fp.host, i)
				body := []byte(fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","id":"%s/follows/1","type":"Follow","actor":%q,"object":%q}`, actor, actor, target))
				r, _ := http.NewRequest(http.MethodPost, "http://"+host+"/inbox", bytes.NewReader(body))
				r.Header.Set("Content-Type", "application/activity+json")
				if err := activitypub.SignCavage(r, body, fp.key, actor+"#main-key", activitypub.CavageOptions{}); err != nil {
					t.Error(err)
					return
				}
				r.URL.Host = listens[i%len(listens)]
				resp, err := http.DefaultClient.Do(r)
				if err != nil {
					t.Errorf("follow %d: %v", i, err)
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					t.Errorf("follow %d: %d %s", i, resp.StatusCode, b)
					return
				}
			}
		}()
	}
	wg.Wait()
	eventually(t, 3*time.Minute, func() error {
		fp.mu.Lock()
		defer fp.mu.Unlock()
		if len(fp.accepted) < to {
			return fmt.Errorf("%d of %d Follows Accepted", len(fp.accepted), to)
		}
		return nil
	})
}

// createsSeen is how many Create POSTs the fake peer has received.
func (fp *fakePeer) createsSeen() int {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	return fp.creates
}

// gitlabReleaseBody is GitLab's release payload with another tag, and the release page.
func gitlabReleaseBody(t *testing.T, tag string) ([]byte, string) {
	body := strings.ReplaceAll(string(sourcePayload(t, "gitlab/release.json")), "v1.1", tag)
	return []byte(body), tag
}

// postHook posts a GitLab release webhook to an actor's source on listen.
func postHook(t *testing.T, listen, host, actor, source string, body []byte, token string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+listen+"/hooks/"+actor+"/"+source, bytes.NewReader(body))
	req.Host = host
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Gitlab-Event", "Release Hook")
	req.Header.Set("X-Gitlab-Token", token)
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

// apiRequest matches one series of apiserver_request_total.
var apiRequest = regexp.MustCompile(`^apiserver_request_total\{(.*)\} ([0-9.e+]+)$`)

// apiRequests reads apiserver_request_total from the kube-apiserver's /metrics, summed
// by "VERB resource[/subresource]".
func apiRequests(t *testing.T, cfg *rest.Config) map[string]float64 {
	t.Helper()
	cs, err := kubernetes.NewForConfig(cfg)
	must(t, err)
	raw, err := cs.RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
	must(t, err)
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := apiRequest.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		labels := map[string]string{}
		for _, kv := range strings.Split(m[1], ",") {
			k, v, _ := strings.Cut(kv, "=")
			labels[k] = strings.Trim(v, `"`)
		}
		v, err := strconv.ParseFloat(m[2], 64)
		must(t, err)
		key := labels["verb"] + " " + labels["resource"]
		if labels["subresource"] != "" {
			key += "/" + labels["subresource"]
		}
		out[key] += v
	}
	return out
}

// isWrite says whether a "VERB resource" key of apiRequests changes something.
func isWrite(key string) bool {
	verb, _, _ := strings.Cut(key, " ")
	switch verb {
	case "POST", "PUT", "PATCH", "DELETE", "DELETECOLLECTION", "APPLY":
		return true
	}
	return false
}

// apiQuiet waits until the API server has taken no write for 3 s (at most 5 minutes: the
// Subscriptions of 1,000 new followers take minutes to settle on a loaded machine),
// the servers' status reports and Lease renewals aside (they never stop), and returns its
// request counts.
func apiQuiet(t *testing.T, cfg *rest.Config) map[string]float64 {
	t.Helper()
	last, since := apiRequests(t, cfg), time.Now()
	for deadline := time.Now().Add(5 * time.Minute); time.Now().Before(deadline); {
		time.Sleep(500 * time.Millisecond)
		now := apiRequests(t, cfg)
		if w, _ := writesBetween(last, now, "federationservers/status", "leases"); w > 0 {
			last, since = now, time.Now()
			continue
		}
		if time.Since(since) >= 3*time.Second {
			return now
		}
	}
	t.Log("the API server was not quiet for 3 s within 5 minutes; counting from here")
	return last
}

// writesBetween counts the writes from before to after, but those to the resources in
// except, and lists them by verb and resource.
func writesBetween(before, after map[string]float64, except ...string) (int, []string) {
	total := 0
	var by []string
	for k, v := range after {
		_, res, _ := strings.Cut(k, " ")
		if d := int(v - before[k]); d > 0 && isWrite(k) && !slices.Contains(except, res) {
			total += d
			by = append(by, fmt.Sprintf("%s %d", k, d))
		}
	}
	sort.Strings(by)
	return total, by
}
