package sources

import (
	"context"
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

// WebhookConfig wires the webhook handler to the server. Lookup, Secret, Publish and
// Base are required; Now defaults to time.Now, Log to a discarding logger and Metrics
// to no registration.
type WebhookConfig struct {
	Lookup  LookupFunc
	Secret  SecretFunc
	Publish render.PublishFunc
	Base    render.BaseFunc
	// Observe, when set, sees every authentic event before the source's selection and
	// rendering (the server records forks and stars from it, whether or not the source
	// posts them). An error is answered 500, so the forge retries.
	Observe func(ctx context.Context, actor *fedv1.FederatedActor, ev *forge.Event) error
	// Topics, when set, reads a repository's topics from its forge for sources that
	// select by topic (scope.go); unset, only the payload's topics count.
	Topics TopicsFunc
	// Upstream, when set, says where a fork's event also goes (render.Upstream: the
	// upstream of its offered pull requests, issue 14); nil for most events. An error is
	// answered 500, so the forge retries.
	Upstream func(ctx context.Context, actor *fedv1.FederatedActor, ev *forge.Event) (*render.Upstream, error)
	Now      func() time.Time
	Log      logr.Logger
	Metrics  prometheus.Registerer
}

// WebhookHandler serves POST /hooks/{username}/{source}: it authenticates the forge's
// delivery with the source's secret, renders the event and publishes it.
type WebhookHandler struct {
	cfg    WebhookConfig
	events *prometheus.CounterVec
}

// Results counted by fedforge_webhook_requests_total, one per way a delivery ends.
const (
	resultPublished    = "published"
	resultIgnored      = "ignored"
	resultNotSelected  = "not_selected"
	resultUnauthorized = "unauthorized"
	resultMalformed    = "malformed"
	resultTooLarge     = "too_large"
	resultNotFound     = "not_found"
	resultError        = "error"
)

// NewWebhookHandler checks cfg and registers the handler's metrics.
func NewWebhookHandler(cfg WebhookConfig) (*WebhookHandler, error) {
	if cfg.Lookup == nil || cfg.Secret == nil || cfg.Publish == nil || cfg.Base == nil {
		return nil, errors.New("sources: webhook handler needs Lookup, Secret, Publish and Base")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log.GetSink() == nil {
		cfg.Log = logr.Discard()
	}
	events, err := metrics.RegisterCounter(cfg.Metrics, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fedforge_webhook_requests_total",
		Help: "Webhook deliveries by forge and result (published, ignored, not_selected, not_in_topic, private, unauthorized, malformed, too_large, not_found, error).",
	}, []string{"forge", "result"}))
	if err != nil {
		return nil, err
	}
	return &WebhookHandler{cfg: cfg, events: events}, nil
}

// ServeHTTP answers 202 once the event is published or deliberately ignored, 401 for a
// bad or missing signature, 400 for a malformed payload, 404 for an unknown actor or
// source, 413 for a body over 1 MiB and 500 when publishing failed, so that the forge
// retries (publishing is idempotent by activity id, so the retry cannot double-post).
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
	log = log.WithValues("kind", ev.Kind, "action", ev.Action, "delivery", ev.DeliveryID)
	if h.cfg.Observe != nil {
		if err := h.cfg.Observe(ctx, actor, ev); err != nil {
			log.Error(err, "recording webhook event failed")
			h.count(srcType, resultError)
			http.Error(w, "recording failed", http.StatusInternalServerError)
			return
		}
	}
	evs, reason, err := h.scoped(ctx, src, ev)
	if err != nil {
		log.Error(err, "scoping webhook event failed", "repository", ev.Repository.FullName)
		h.count(srcType, resultError)
		http.Error(w, "reading the repository from the forge failed", http.StatusInternalServerError)
		return
	}
	if len(evs) == 0 {
		h.count(srcType, reason)
		log.V(1).Info("webhook event not published by the source", "reason", reason, "repository", ev.Repository.FullName)
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, "ignored: event not selected by this source ("+reason+")\n")
		return
	}
	base, err := h.cfg.Base(ctx)
	if err != nil {
		log.Error(err, "server base URL unavailable")
		h.count(srcType, resultError)
		http.Error(w, "server not configured", http.StatusServiceUnavailable)
		return
	}
	target := render.TargetFor(base, actor, src, h.cfg.Now())
	if h.cfg.Upstream != nil {
		if target.Upstream, err = h.cfg.Upstream(ctx, actor, ev); err != nil {
			log.Error(err, "reading the upstream of offered pull requests failed")
			h.count(srcType, resultError)
			http.Error(w, "recording failed", http.StatusInternalServerError)
			return
		}
	}
	var acts []store.Activity
	for _, e := range evs {
		a, err := render.Render(e, target)
		if errors.Is(err, forge.ErrIgnoredEvent) && len(evs) > 1 {
			continue // a star, say: the topic announcement beside it still goes out
		}
		if err != nil {
			h.fail(w, log, srcType, err)
			return
		}
		acts = append(acts, a...)
	}
	if err := h.cfg.Publish(ctx, actor, src, acts); err != nil {
		log.Error(err, "publishing webhook event failed")
		h.count(srcType, resultError)
		http.Error(w, "publishing failed", http.StatusInternalServerError)
		return
	}
	h.count(srcType, resultPublished)
	log.Info("webhook event published", "activities", len(acts), "id", acts[0].ID)
	w.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(w, "published\n")
}

// fail answers a parse or render error with its status. Authentication failures are
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
