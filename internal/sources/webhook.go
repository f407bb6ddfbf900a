package sources

import (
	"context"
	"encoding/json"
	"errors"
	"github.com/fedforge/fedforge/internal/forge"
	"github.com/fedforge/fedforge/internal/forge/registry"
	"github.com/fedforge/fedforge/internal/forge/webhook"
	"github.com/fedforge/fedforge/internal/metrics"
	"github.com/fedforge/fedforge/internal/render"
	"github.com/fedforge/fedforge/internal/store"
	"io"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
)

// WebhookPattern is the route the server mounts NewWebhookHandler at; the handler reads
// the {username} and {source} path values.
const WebhookPattern = "POST /hooks/{username}/{source}"

// LookupFunc finds a served actor by preferredUsername and one of its sources by name.
// It returns nil (and no error) for either when there is none, which is answered 404.
type LookupFunc func(ctx context.Context, username, source string) (*fedv1.FederatedActor, *fedv1.EventSource, error)

// SecretFunc reads one key of a Secret in the actor's namespace. Its bytes are never
// logged; callers that cannot find the Secret return an error (answered 500, so the
// forge retries once the Secret exists).
type SecretFunc func(ctx context.Context, namespace string, ref fedv1.SecretKeyReference) ([]byte, error)

// WebhookConfig wires the webhook handler to the server. Lookup, Secret, Publish, Base
// and Queue are required; Now defaults to time.Now, Log to a discarding logger and
// Metrics to no registration.
type WebhookConfig struct {
	Lookup  LookupFunc
	Secret  SecretFunc
	Publish render.PublishFunc
	Base    render.BaseFunc
	// Queue holds every authenticated event from the answer to the forge until the
	// worker (webhook_worker.go) has processed it.
	Queue store.WebhookEvents
	// Observe, when set, sees every authentic event before the source's selection and
	// rendering (the server records forks and stars from it, whether or not the source
	// posts them). It runs in the worker; an error retries the event later.
	Observe func(ctx context.Context, actor *fedv1.FederatedActor, ev *forge.Event) error
	// Topics, when set, reads a repository's topics from its forge for sources that
	// select by topic (scope.go); unset, only the payload's topics count.
	Topics TopicsFunc
	// Upstream, when set, says where a fork's event also goes (render.Upstream: the
	// upstream of its offered pull requests, issue 14); nil for most events. It runs in
	// the worker; an error retries the event later.
	Upstream func(ctx context.Context, actor *fedv1.FederatedActor, ev *forge.Event) (*render.Upstream, error)
	// Worker tunes the queue's worker; zero fields take the defaults.
	Worker  WorkerConfig
	Now     func() time.Time
	Log     logr.Logger
	Metrics prometheus.Registerer
}

// WebhookHandler serves POST /hooks/{username}/{source}: it authenticates the forge's
// delivery with the source's secret, records the event in the queue and answers; its
// worker (Run) then renders and publishes the event.
type WebhookHandler struct {
	cfg       WebhookConfig
	events    *prometheus.CounterVec
	processed *prometheus.CounterVec
	gauges    *queueCollector // reads this handler's queue until Run ends
	kick      chan struct{}
	pruned    time.Time // when Run last pruned finished rows; only Run touches it
}

// Results counted by fedforge_webhook_requests_total, one per way the answer to a
// delivery ends. What happens to a queued event afterwards is counted by
// fedforge_webhook_events_total (webhook_worker.go).
const (
	resultQueued       = "queued"
	resultDuplicate    = "duplicate"
	resultIgnored      = "ignored"
	resultUnauthorized = "unauthorized"
	resultMalformed    = "malformed"
	resultTooLarge     = "too_large"
	resultNotFound     = "not_found"
	resultError        = "error"
)

// NewWebhookHandler checks cfg and registers the handler's metrics.
func NewWebhookHandler(cfg WebhookConfig) (*WebhookHandler, error) {
	if cfg.Lookup == nil || cfg.Secret == nil || cfg.Publish == nil || cfg.Base == nil || cfg.Queue == nil {
		return nil, errors.New("sources: webhook handler needs Lookup, Secret, Publish, Base and Queue")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log.GetSink() == nil {
		cfg.Log = logr.Discard()
	}
	cfg.Worker = cfg.Worker.withDefaults()
	events, err := metrics.RegisterCounter(cfg.Metrics, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fedforge_webhook_requests_total",
		Help: "Webhook deliveries by forge and the answer's result (queued, duplicate, ignored, unauthorized, malformed, too_large, not_found, error); fedforge_webhook_events_total counts what became of the queued ones.",
	}, []string{"forge", "result"}))
	if err != nil {
		return nil, err
	}
	processed, err := metrics.RegisterCounter(cfg.Metrics, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fedforge_webhook_events_total",
		Help: "Queued webhook events processed, by forge and result (published, ignored, not_selected, not_in_topic, private, retry, failed).",
	}, []string{"forge", "result"}))
	if err != nil {
		return nil, err
	}
	gauges, err := metrics.Register(cfg.Metrics, newQueueCollector(cfg.Now))
	if err != nil {
		return nil, err
	}
	gauges.attach(cfg.Queue)
	return &WebhookHandler{cfg: cfg, events: events, processed: processed, gauges: gauges, kick: make(chan struct{}, 1)}, nil
}

// ServeHTTP answers 202 once the authenticated event is recorded in the queue (or was
// recorded before under the same delivery id, or is an event Fedforge does not read),
// 401 for a bad or missing signature, 400 for a malformed payload, 404 for an unknown
// actor or source, 413 for a body over 1 MiB and 500 when the event could not be
// recorded. Everything slower (forge reads, signing, publishing) runs in the worker
// afterwards: Gitea gives a webhook 5 s and never retries one that timed out.
func (h *WebhookHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	username, sourceName := r.PathValue("username"), r.PathValue("source")
	log := h.cfg.Log.WithValues("username", username, "source", sourceName, "remote", r.RemoteAddr)
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	actor, src, err := h.cfg.Lookup(ctx, username, sourceName)
	if err != nil {
		log.Error(err, "webhook lookup failed")
		h.count("unknown", resultError)
		http.Error(w, "lookup failed", http.StatusInternalServerError)
		return
	}
	if actor == nil || src == nil || src.Type == fedv1.SourceFeed {
		h.count("unknown", resultNotFound)
		http.Error(w, "no such webhook", http.StatusNotFound)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, webhook.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			h.count(string(src.Type), resultTooLarge)
			http.Error(w, "payload too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "reading body failed", http.StatusBadRequest)
		return
	}
	srcType := string(src.Type)
	log = log.WithValues("actor", actor.Namespace+"/"+actor.Name, "forge", srcType)
	var secret []byte
	if src.SecretRef != nil {
		secret, err = h.cfg.Secret(ctx, actor.Namespace, *src.SecretRef)
		if err != nil {
			log.Error(err, "reading webhook secret failed", "secret", src.SecretRef.Name)
			h.count(srcType, resultError)
			http.Error(w, "webhook secret unavailable", http.StatusInternalServerError)
			return
		}
	}
	ev, err := registry.ParseWebhook(src.Type, r.Header, body, secret)
	if err != nil {
		h.fail(w, log, srcType, err)
		return
	}
	log = log.WithValues("kind", ev.Kind, "action", ev.Action, "delivery", ev.DeliveryID, "host", forgeHost(ev))
	payload, err := json.Marshal(ev)
	if err != nil {
		log.Error(err, "encoding webhook event failed")
		h.count(srcType, resultError)
		http.Error(w, "recording failed", http.StatusInternalServerError)
		return
	}
	row, created, err := h.cfg.Queue.EnqueueWebhookEvent(ctx, store.WebhookEvent{
		Username: username, Source: sourceName, DeliveryID: ev.DeliveryID,
		Actor: actor.Namespace + "/" + actor.Name, Forge: srcType, Payload: payload,
	}, h.cfg.Now())
	if err != nil {
		log.Error(err, "queueing webhook event failed")
		h.count(srcType, resultError)
		http.Error(w, "recording failed", http.StatusInternalServerError)
		return
	}
	if !created {
		h.count(srcType, resultDuplicate)
		log.V(1).Info("webhook delivery already recorded", "row", row.ID)
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, "already received\n")
		return
	}
	h.count(srcType, resultQueued)
	log.V(1).Info("webhook event queued", "row", row.ID)
	h.Kick()
	w.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(w, "queued\n")
}

// fail answers a parse error with its status. Authentication failures are
// logged with the remote address (never the header values), so that an admin can find
// a misconfigured forge or a prober.
func (h *WebhookHandler) fail(w http.ResponseWriter, log logr.Logger, srcType string, err error) {
	status := forge.StatusOf(err)
	switch status {
	case http.StatusAccepted:
		h.count(srcType, resultIgnored)
		log.V(1).Info("webhook event ignored", "reason", err.Error())
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, "ignored: unsupported event\n")
		return
	case http.StatusUnauthorized:
		h.count(srcType, resultUnauthorized)
		log.Info("webhook authentication failed", "reason", err.Error())
		http.Error(w, "invalid or missing webhook signature", status)
		return
	case http.StatusBadRequest:
		h.count(srcType, resultMalformed)
		log.Info("malformed webhook payload", "reason", err.Error())
	case http.StatusRequestEntityTooLarge:
		h.count(srcType, resultTooLarge)
	default:
		h.count(srcType, resultError)
		log.Error(err, "webhook processing failed")
	}
	http.Error(w, http.StatusText(status), status)
}

func (h *WebhookHandler) count(srcType, result string) {
	h.events.WithLabelValues(srcType, result).Inc()
}
