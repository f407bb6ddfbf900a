package sources

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/fedforge/fedforge/internal/forge/forgetest"
	"github.com/fedforge/fedforge/internal/forge/webhook"
	"github.com/fedforge/fedforge/internal/render/rendertest"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/forge"
	"github.com/fedforge/fedforge/internal/store"
)

// logSink collects log lines, to prove what is and is not logged.
type logSink struct {
	mu    sync.Mutex
	lines []string
}

func (s *logSink) logger() logr.Logger {
	return funcr.New(func(prefix, args string) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.lines = append(s.lines, prefix+" "+args)
	}, funcr.Options{Verbosity: 1})
}

func (s *logSink) text() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.lines, "\n")
}

type webhookFixture struct {
	h       *WebhookHandler
	mux     *http.ServeMux
	pub     *rendertest.StorePublisher
	reg     *prometheus.Registry
	logs    *logSink
	secrets map[string][]byte
	clock   *testClock
	gone    atomic.Bool // Lookup finds no actor any more
	// observe, when set, is the handler's Observe.
	observe func(ctx context.Context, actor *fedv1.FederatedActor, ev *forge.Event) error
}

// testClock is the handler's clock; tests move it to make a retry due.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func testActor() *fedv1.FederatedActor {
	return &fedv1.FederatedActor{
		ObjectMeta: metav1.ObjectMeta{Namespace: "forge", Name: "demo"},
		Spec: fedv1.FederatedActorSpec{PreferredUsername: "releases-demo", Type: fedv1.ActorService, Sources: []fedv1.EventSource{
			{Name: "gitlab", Type: fedv1.SourceGitLab, SecretRef: &fedv1.SecretKeyReference{Name: "hook", Key: "gitlab"}},
			{Name: "gitea", Type: fedv1.SourceGitea, SecretRef: &fedv1.SecretKeyReference{Name: "hook", Key: "gitea"}},
			{Name: "forgejo", Type: fedv1.SourceForgejo, SecretRef: &fedv1.SecretKeyReference{Name: "hook", Key: "forgejo"}},
			{Name: "github", Type: fedv1.SourceGitHub, SecretRef: &fedv1.SecretKeyReference{Name: "hook", Key: "github"}, Events: []string{"Release"}},
			{Name: "nosecret", Type: fedv1.SourceGitLab},
			{Name: "feed", Type: fedv1.SourceFeed, Feed: &fedv1.FeedSource{URL: "https://forge.example/releases.atom"}},
		}},
	}
}

func newWebhookFixture(t *testing.T) *webhookFixture {
	t.Helper()
	return newWebhookFixtureOn(t, rendertest.OpenStore(t))
}

// newWebhookFixtureOn builds a handler on st, whose queue it uses; its worker does not
// run until the test calls f.drain or f.h.Run.
func newWebhookFixtureOn(t *testing.T, st store.Store) *webhookFixture {
	t.Helper()
	f := &webhookFixture{
		pub: &rendertest.StorePublisher{St: st}, reg: prometheus.NewRegistry(), logs: &logSink{}, clock: &testClock{t: rendertest.Now},
		secrets: map[string][]byte{"gitlab": forgetest.Secret, "gitea": forgetest.Secret, "forgejo": forgetest.Secret, "github": forgetest.Secret},
	}
	actor := testActor()
	h, err := NewWebhookHandler(WebhookConfig{
		Lookup: func(_ context.Context, username, source string) (*fedv1.FederatedActor, *fedv1.EventSource, error) {
			if username == "lookup-fails" {
				return nil, nil, errors.New("cache not synced")
			}
			if username != actor.Spec.PreferredUsername || f.gone.Load() {
				return nil, nil, nil
			}
			for i := range actor.Spec.Sources {
				if actor.Spec.Sources[i].Name == source {
					return actor, &actor.Spec.Sources[i], nil
				}
			}
			return actor, nil, nil
		},
		Secret: func(_ context.Context, ns string, ref fedv1.SecretKeyReference) ([]byte, error) {
			if ns != "forge" || ref.Name != "hook" {
				return nil, fmt.Errorf("secret %s/%s not found", ns, ref.Name)
			}
			s, ok := f.secrets[ref.Key]
			if !ok {
				return nil, fmt.Errorf("key %s not found", ref.Key)
			}
			return s, nil
		},
		Publish: f.pub.Publish,
		Base:    func(context.Context) (string, error) { return "https://fed.example", nil },
		Queue:   st,
		Observe: func(ctx context.Context, actor *fedv1.FederatedActor, ev *forge.Event) error {
			if f.observe == nil {
				return nil
			}
			return f.observe(ctx, actor, ev)
		},
		Worker:  WorkerConfig{Owner: "test-worker", BaseDelay: time.Second, MaxDelay: time.Minute, PollInterval: 10 * time.Millisecond},
		Now:     f.clock.now,
		Log:     f.logs.logger(),
		Metrics: f.reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.h = h
	f.mux = http.NewServeMux()
	f.mux.Handle(WebhookPattern, h)
	return f
}

func (f *webhookFixture) post(path string, h http.Header, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.RemoteAddr = "203.0.113.9:41000"
	for k, v := range h {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	f.mux.ServeHTTP(rec, req)
	return rec
}

// drain runs the worker until nothing is due, and returns how many rows it leased.
func (f *webhookFixture) drain(t *testing.T) int {
	t.Helper()
	total := 0
	for {
		n, err := f.h.RunOnce(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return total
		}
		total += n
	}
}

// counter reads fedforge_webhook_requests_total (the answers).
func (f *webhookFixture) counter(forge, result string) float64 {
	return f.metric("fedforge_webhook_requests_total", forge, result)
}

// outcome reads fedforge_webhook_events_total (what the worker did).
func (f *webhookFixture) outcome(forge, result string) float64 {
	return f.metric("fedforge_webhook_events_total", forge, result)
}

func (f *webhookFixture) metric(name, forge, result string) float64 {
	mfs, err := f.reg.Gather()
	if err != nil {
		return -1
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["forge"] == forge && labels["result"] == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// TestWebhookHandlerPublishes: a signed delivery from each forge is answered 202 once it
// is queued, before anything is published; the worker publishes it once; the forge's
// redelivery of the same delivery id, before or after that, is answered 202 and runs
// nothing again.
func TestWebhookHandlerPublishes(t *testing.T) {
	tests := map[string]struct {
		source string
		tc     forgetest.Payload
	}{
		"gitlab release": {"gitlab", forgetest.Payloads["gitlab release"]},
		"gitea release":  {"gitea", forgetest.Payloads["gitea release published"]},
		"forgejo push":   {"forgejo", forgetest.Payloads["forgejo push"]},
		"github release": {"github", forgetest.Payloads["github release published"]},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newWebhookFixture(t)
			body := forgetest.Read(t, tc.tc.File)
			h := forgetest.SignedHeaders(tc.tc.Forge, tc.tc.Event, body, forgetest.Secret)
			for attempt, want := range []string{"queued\n", "already received\n"} {
				rec := f.post("/hooks/releases-demo/"+tc.source, h, body)
				if rec.Code != http.StatusAccepted || rec.Body.String() != want {
					t.Fatalf("attempt %d: status %d: %q, want 202 %q", attempt, rec.Code, rec.Body, want)
				}
			}
			if f.pub.Calls != 0 {
				t.Fatalf("published %d times before the worker ran", f.pub.Calls)
			}
			if n := f.drain(t); n != 1 {
				t.Fatalf("the worker ran %d rows, want 1", n)
			}
			if rec := f.post("/hooks/releases-demo/"+tc.source, h, body); rec.Code != http.StatusAccepted || rec.Body.String() != "already received\n" {
				t.Fatalf("redelivery after processing: %d %q", rec.Code, rec.Body)
			}
			if n := f.drain(t); n != 0 {
				t.Fatalf("the redelivery ran %d rows again", n)
			}
			if f.pub.Calls != 1 || f.pub.Created != 1 {
				t.Fatalf("publish calls %d, activities created %d; want 1 and 1", f.pub.Calls, f.pub.Created)
			}
			a := f.pub.Acts[0]
			if !strings.HasPrefix(a.ID, "https://fed.example/actors/releases-demo/activities/") {
				t.Errorf("activity id %s", a.ID)
			}
			got, err := f.pub.St.GetActivity(context.Background(), a.ID)
			if err != nil || !bytes.Equal(got.Raw, a.Raw) {
				t.Errorf("stored activity %v: %v", got.ID, err)
			}
			forge := string(tc.tc.Forge)
			if q, d, p := f.counter(forge, resultQueued), f.counter(forge, resultDuplicate), f.outcome(forge, resultPublished); q != 1 || d != 2 || p != 1 {
				t.Errorf("answers queued %v, duplicate %v; published %v; want 1, 2, 1", q, d, p)
			}
			if st, err := f.pub.St.WebhookEventStats(context.Background()); err != nil || st.Pending != 0 {
				t.Errorf("queue after the run: %+v %v", st, err)
			}
		})
	}
}

func TestWebhookHandlerAnswers(t *testing.T) {
	release := forgetest.Read(t, "gitlab/release.json")
	ghPush := forgetest.Read(t, "github/push_new_branch.json")
	gitlabHeaders := forgetest.SignedHeaders(fedv1.SourceGitLab, "Release Hook", release, forgetest.Secret)
	tests := map[string]struct {
		path    string
		header  http.Header
		body    []byte
		prepare func(f *webhookFixture)
		status  int
		forge   string
		result  string // the answer's, in fedforge_webhook_requests_total
		outcome string // the worker's, in fedforge_webhook_events_total ("" when nothing was queued)
	}{
		"bad token": {"/hooks/releases-demo/gitlab", forgetest.SignedHeaders(fedv1.SourceGitLab, "Release Hook", release, []byte("guess")), release, nil,
			http.StatusUnauthorized, "GitLab", resultUnauthorized, ""},
		"no secret configured": {"/hooks/releases-demo/nosecret", gitlabHeaders, release, nil,
			http.StatusUnauthorized, "GitLab", resultUnauthorized, ""},
		"unknown actor": {"/hooks/nobody/gitlab", gitlabHeaders, release, nil, http.StatusNotFound, "unknown", resultNotFound, ""},
		"unknown source": {"/hooks/releases-demo/bitbucket", gitlabHeaders, release, nil,
			http.StatusNotFound, "unknown", resultNotFound, ""},
		"feed source": {"/hooks/releases-demo/feed", gitlabHeaders, release, nil, http.StatusNotFound, "unknown", resultNotFound, ""},
		"lookup fails": {"/hooks/lookup-fails/gitlab", gitlabHeaders, release, nil,
			http.StatusInternalServerError, "unknown", resultError, ""},
		"ignored event": {"/hooks/releases-demo/gitlab", forgetest.SignedHeaders(fedv1.SourceGitLab, "Pipeline Hook", release, forgetest.Secret), release, nil,
			http.StatusAccepted, "GitLab", resultIgnored, ""},
		"event not selected": {"/hooks/releases-demo/github", forgetest.SignedHeaders(fedv1.SourceGitHub, "push", ghPush, forgetest.Secret), ghPush, nil,
			http.StatusAccepted, "GitHub", resultQueued, resultNotSelected},
		"malformed": {"/hooks/releases-demo/gitlab", forgetest.SignedHeaders(fedv1.SourceGitLab, "Release Hook", []byte("{"), forgetest.Secret), []byte("{"), nil,
			http.StatusBadRequest, "GitLab", resultMalformed, ""},
		"too large": {"/hooks/releases-demo/gitlab", gitlabHeaders, append(bytes.Repeat([]byte(" "), webhook.MaxBodyBytes), release...), nil,
			http.StatusRequestEntityTooLarge, "GitLab", resultTooLarge, ""},
		"secret unreadable": {"/hooks/releases-demo/gitlab", gitlabHeaders, release, func(f *webhookFixture) { delete(f.secrets, "gitlab") },
			http.StatusInternalServerError, "GitLab", resultError, ""},
		// Publishing fails after the answer: the forge was told 202, the queue retries.
		"publish fails": {"/hooks/releases-demo/gitlab", gitlabHeaders, release, func(f *webhookFixture) { f.pub.Fail = errors.New("store down") },
			http.StatusAccepted, "GitLab", resultQueued, resultRetry},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newWebhookFixture(t)
			if tc.prepare != nil {
				tc.prepare(f)
			}
			rec := f.post(tc.path, tc.header, tc.body)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			if n := f.counter(tc.forge, tc.result); n != 1 {
				t.Errorf("counter {%s,%s} = %v, want 1", tc.forge, tc.result, n)
			}
			wantPending := int64(0)
			if tc.outcome != "" {
				wantPending = 1
			}
			if st, err := f.pub.St.WebhookEventStats(context.Background()); err != nil || st.Pending != wantPending {
				t.Errorf("queue after a %d: %+v %v; want %d pending", tc.status, st, err, wantPending)
			}
			if ran := f.drain(t); (ran == 1) != (tc.outcome != "") {
				t.Errorf("the worker ran %d rows", ran)
			}
			if tc.outcome != "" {
				if n := f.outcome(tc.forge, tc.outcome); n != 1 {
					t.Errorf("outcome {%s,%s} = %v, want 1", tc.forge, tc.outcome, n)
				}
			} else if f.pub.Calls != 0 {
				t.Errorf("published on a %d", tc.status)
			}
			if tc.result == resultIgnored || tc.result == resultNotSelected {
				if f.pub.Calls != 0 {
					t.Error("an ignored event was published")
				}
			}
			logs := f.logs.text()
			if strings.Contains(logs, string(forgetest.Secret)) || strings.Contains(logs, "guess") {
				t.Errorf("a secret or token reached the logs:\n%s", logs)
			}
			if tc.status == http.StatusUnauthorized && !strings.Contains(logs, "203.0.113.9") {
				t.Errorf("401 not logged with the remote address:\n%s", logs)
			}
		})
	}
}

func TestWebhookHandlerConfig(t *testing.T) {
	if _, err := NewWebhookHandler(WebhookConfig{}); err == nil {
		t.Fatal("a handler without Lookup, Secret, Publish, Base and Queue was built")
	}
	// Two handlers on one registry share the counter instead of failing.
	reg := prometheus.NewRegistry()
	cfg := WebhookConfig{
		Lookup: func(context.Context, string, string) (*fedv1.FederatedActor, *fedv1.EventSource, error) {
			return nil, nil, nil
		},
		Secret:  func(context.Context, string, fedv1.SecretKeyReference) ([]byte, error) { return nil, nil },
		Publish: func(context.Context, *fedv1.FederatedActor, *fedv1.EventSource, []store.Activity) error { return nil },
		Base:    func(context.Context) (string, error) { return "https://fed.example", nil },
		Queue:   rendertest.OpenStore(t),
		Metrics: reg,
	}
	a, err := NewWebhookHandler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewWebhookHandler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if a.events != b.events || a.processed != b.processed {
		t.Error("second handler did not reuse the registered counters")
	}
	// Before any request only the queue's gauges are there, at zero.
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "fedforge_webhook_queue_") {
			t.Errorf("metric family %s before any request", mf.GetName())
		}
		for _, m := range mf.GetMetric() {
			if v := m.GetGauge().GetValue(); v != 0 {
				t.Errorf("%s = %v on an empty queue", mf.GetName(), v)
			}
		}
	}
}

// TestWebhookQueueGaugesFollowTheLiveHandler: a server rebuilt in one process (a restart,
// the tests' pairs) registers its handler on the same registry with a new store after
// the old one's worker ended and its store closed. The queue gauges then read the new
// store: bound to the first store, every scrape failed (the endpoint answered 500).
func TestWebhookQueueGaugesFollowTheLiveHandler(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfgOn := func(q store.Store) WebhookConfig {
		return WebhookConfig{
			Lookup: func(context.Context, string, string) (*fedv1.FederatedActor, *fedv1.EventSource, error) {
				return nil, nil, nil
			},
			Secret:  func(context.Context, string, fedv1.SecretKeyReference) ([]byte, error) { return nil, nil },
			Publish: func(context.Context, *fedv1.FederatedActor, *fedv1.EventSource, []store.Activity) error { return nil },
			Base:    func(context.Context) (string, error) { return "https://fed.example", nil },
			Queue:   q,
			Worker:  WorkerConfig{PollInterval: time.Hour},
			Metrics: reg,
		}
	}
	pending := func() float64 {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatalf("scrape: %v", err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "fedforge_webhook_queue_rows" {
				continue
			}
			for _, m := range mf.GetMetric() {
				if m.GetLabel()[0].GetValue() == "pending" {
					return m.GetGauge().GetValue()
				}
			}
		}
		return -1 // not exported
	}

	first := rendertest.OpenStore(t)
	a, err := NewWebhookHandler(cfgOn(first))
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- a.Run(ctx) }()
	if got := pending(); got != 0 {
		t.Fatalf("pending rows of the first handler's empty queue = %v, want 0", got)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if got := pending(); got != -1 {
		t.Errorf("queue gauges exported (%v) while no handler's worker runs", got)
	}

	second := rendertest.OpenStore(t)
	for i := range 2 {
		if _, _, err := second.EnqueueWebhookEvent(context.Background(), store.WebhookEvent{
			Username: "rocket", Source: "gitea", Payload: []byte(`{}`), DeliveryID: fmt.Sprintf("d%d", i),
		}, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := NewWebhookHandler(cfgOn(second)); err != nil {
		t.Fatal(err)
	}
	if got := pending(); got != 2 {
		t.Errorf("pending rows after the rebuild = %v, want the second store's 2", got)
	}
}
