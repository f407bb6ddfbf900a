package sources

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/forge"
	"github.com/fedforge/fedforge/internal/render/rendertest"
)

// TestTopicSourceScope covers what the real-Gitea test cannot provoke: the forge's API
// failing while a topic source reads a new repository's topics (answered 202, nothing stored,
// and the queue retries the event), the topics it returns deciding, and the
// organization hook's scope header deciding whether a private repository is skipped.
// The payloads are built here in Gitea's shape (field names as a real Gitea 1.27.3 sent
// them, see TestRepositoryEventsFromRealGitea), not recorded.
func TestTopicSourceScope(t *testing.T) {
	const secret = "scope-secret"
	actor := &fedv1.FederatedActor{
		ObjectMeta: metav1.ObjectMeta{Namespace: "forge", Name: "space"},
		Spec: fedv1.FederatedActorSpec{PreferredUsername: "topic-space", Type: fedv1.ActorGroup, Sources: []fedv1.EventSource{
			{Name: "topic", Type: fedv1.SourceGitea, SecretRef: &fedv1.SecretKeyReference{Name: "hook"}, Topics: []string{"Space"}, Events: []string{"Repository"}},
			{Name: "org", Type: fedv1.SourceGitea, SecretRef: &fedv1.SecretKeyReference{Name: "hook"}},
		}},
	}
	var topics []string
	var topicsErr error
	pub := &rendertest.StorePublisher{St: rendertest.OpenStore(t)}
	reg := prometheus.NewRegistry()
	clock := &testClock{t: rendertest.Now}
	h, err := NewWebhookHandler(WebhookConfig{
		Lookup: func(_ context.Context, _, source string) (*fedv1.FederatedActor, *fedv1.EventSource, error) {
			for i := range actor.Spec.Sources {
				if actor.Spec.Sources[i].Name == source {
					return actor, &actor.Spec.Sources[i], nil
				}
			}
			return actor, nil, nil
		},
		Secret:  func(context.Context, string, fedv1.SecretKeyReference) ([]byte, error) { return []byte(secret), nil },
		Publish: pub.Publish,
		Base:    func(context.Context) (string, error) { return "https://fed.example", nil },
		Topics:  func(context.Context, *forge.Event) ([]string, error) { return topics, topicsErr },
		Queue:   pub.St,
		Worker:  WorkerConfig{BaseDelay: time.Second, MaxDelay: time.Minute},
		Now:     clock.now,
		Metrics: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(WebhookPattern, h)
	send := func(source, scope, name string, private bool) int {
		body := `{"action":"created","repository":{"name":"` + name + `","full_name":"acme/` + name +
			`","html_url":"https://git.example/acme/` + name + `","private":` + map[bool]string{true: "true", false: "false"}[private] +
			`,"topics":[],"created_at":"2026-12-03T10:00:00Z"},"sender":{"login":"alice"}}`
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write([]byte(body))
		req := httptest.NewRequest(http.MethodPost, "/hooks/topic-space/"+source, strings.NewReader(body))
		req.Header.Set("X-Gitea-Event", "repository")
		req.Header.Set("X-Gitea-Signature", hex.EncodeToString(mac.Sum(nil)))
		req.Header.Set("X-Gitea-Hook-Installation-Target-Type", scope)
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		for { // the worker, after the answer
			n, err := h.RunOnce(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				break
			}
		}
		return rec.Code
	}

	topicsErr = errors.New("git.example: 502 Bad Gateway")
	if code := send("topic", "organization", "rocket", false); code != http.StatusAccepted || pub.Created != 0 {
		t.Errorf("topics unreadable: %d, %d stored; want 202 (queued) and nothing yet", code, pub.Created)
	}
	// The queue retries the event once its backoff has passed, with the topics readable.
	topicsErr, topics = nil, []string{"rust"}
	clock.add(time.Minute)
	if n, err := h.RunOnce(context.Background()); n != 1 || err != nil || pub.Created != 0 {
		t.Errorf("retry of the repository outside the topic: %d rows, %v, %d stored; want 1 row and nothing", n, err, pub.Created)
	}
	topics = []string{"rust", "space"}
	if code := send("topic", "organization", "rocket", false); code != http.StatusAccepted || pub.Created != 1 {
		t.Fatalf("repository in the topic: %d, %d stored; want 202 and one post", code, pub.Created)
	}
	if c := string(pub.Acts[0].Raw); !strings.Contains(c, "created") || !strings.Contains(c, "#\\u003cspan\\u003eSpace") {
		t.Errorf("post %s", c)
	}
	if code := send("org", "organization", "vault", true); code != http.StatusAccepted || pub.Created != 1 {
		t.Errorf("private repository from an organization hook: %d, %d stored; want 202 and nothing more", code, pub.Created)
	}
	if code := send("org", "repository", "vault", true); code != http.StatusAccepted || pub.Created != 2 {
		t.Errorf("private repository from its own hook: %d, %d stored; want it published", code, pub.Created)
	}
	f := &webhookFixture{reg: reg}
	for _, result := range []string{resultRetry, resultNotTopic, resultPrivate} {
		if n := f.outcome("Gitea", result); n != 1 {
			t.Errorf("fedforge_webhook_events_total{result=%q} = %v, want 1", result, n)
		}
	}
	if n := f.counter("Gitea", resultQueued); n != 4 {
		t.Errorf("fedforge_webhook_requests_total{result=queued} = %v, want 4", n)
	}
}
