package sources

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/url"
	"os"
	"runtime/debug"
	"sync"
	"time"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/forge"
	"github.com/fedforge/fedforge/internal/render"
	"github.com/fedforge/fedforge/internal/store"
)

// Defaults of WorkerConfig.
const (
	// DefaultWorkerBaseDelay is the wait after an event's first failed attempt; it
	// doubles per attempt. The event's source waits with it, to keep its order.
	DefaultWorkerBaseDelay = 2 * time.Second
	// DefaultWorkerMaxDelay caps one wait: a store or forge back from an outage sees the
	// source's events within this long.
	DefaultWorkerMaxDelay = 5 * time.Minute
	// DefaultWorkerMaxAge is how long an event is retried before it is given up, as the
	// forge-write queue's: news older than a week is news no one waits for.
	DefaultWorkerMaxAge = 7 * 24 * time.Hour
	// DefaultWorkerTimeout bounds one attempt (forge reads, signing, publishing).
	DefaultWorkerTimeout = 2 * time.Minute
	// DefaultWorkerLease is how long a leased row is one worker's; it covers two timeouts.
	DefaultWorkerLease = 5 * time.Minute
	// DefaultWorkerPollInterval is how often Run looks for due rows without a Kick (a
	// retry that came due, a row queued by another replica).
	DefaultWorkerPollInterval = 2 * time.Second
	// DefaultWorkerBatch is the most rows (each of a different source) run at once.
	DefaultWorkerBatch = 8
	// DefaultWorkerKeep is how long a done or dead row is kept: a redelivery of its
	// delivery id within that time is answered without a second run.
	DefaultWorkerKeep = 7 * 24 * time.Hour
)

// pruneEvery is how often Run deletes rows older than Keep.
const pruneEvery = time.Hour

// WorkerConfig tunes the worker of the webhook queue; zero fields take the defaults.
type WorkerConfig struct {
	// Owner names this worker in leases; default host name and a random suffix.
	Owner                                string
	BaseDelay, MaxDelay, MaxAge, Timeout time.Duration
	Lease, PollInterval, Keep            time.Duration
	Batch                                int
}

func (c WorkerConfig) withDefaults() WorkerConfig {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.BaseDelay, DefaultWorkerBaseDelay)
	def(&c.MaxDelay, DefaultWorkerMaxDelay)
	def(&c.MaxAge, DefaultWorkerMaxAge)
	def(&c.Timeout, DefaultWorkerTimeout)
	def(&c.PollInterval, DefaultWorkerPollInterval)
	def(&c.Keep, DefaultWorkerKeep)
	if c.Lease < 2*c.Timeout {
		c.Lease = max(DefaultWorkerLease, 2*c.Timeout)
	}
	if c.Batch <= 0 {
		c.Batch = DefaultWorkerBatch
	}
	if c.Owner == "" {
		host, _ := os.Hostname()
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		c.Owner = host + "-" + hex.EncodeToString(b)
	}
	return c
}

// Results counted by fedforge_webhook_events_total besides the scoping reasons
// (not_selected, not_in_topic, private) and ignored.
const (
	resultPublished   = "published"
	resultNotSelected = "not_selected"
	// resultRetry counts failed attempts that will be tried again.
	resultRetry = "retry"
	// resultFailed counts events given up: the event's own fault (it cannot be
	// rendered), its source gone, or retried for longer than MaxAge.
	resultFailed = "failed"
)

// permanentError marks a processing error that no retry changes.
type permanentError struct{ err error }

func (p permanentError) Error() string { return p.err.Error() }
func (p permanentError) Unwrap() error { return p.err }

// Kick makes Run look for due rows now (after an event was queued).
func (h *WebhookHandler) Kick() {
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// Run works the webhook queue until ctx ends. Every replica may run it: leases keep a
// row on one worker, and only the oldest pending row of a source is ever leased, so a
// source's events are processed one after the other in the order they were accepted.
func (h *WebhookHandler) Run(ctx context.Context) error {
	defer h.gauges.detach(h.cfg.Queue) // the store may close once the worker has ended
	h.cfg.Log.Info("webhook queue worker started", "owner", h.cfg.Worker.Owner)
	t := time.NewTicker(h.cfg.Worker.PollInterval)
	defer t.Stop()
	for {
		for {
			n, err := h.RunOnce(ctx)
			if err != nil && ctx.Err() == nil {
				h.cfg.Log.Info("leasing webhook events failed", "error", err.Error())
			}
			if n == 0 || err != nil {
				break // a finished row may have freed its source's next one: lease until none is due
			}
		}
		h.prune(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-h.kick:
		case <-t.C:
		}
	}
}

// RunOnce leases one batch of due rows and processes them; it returns how many it leased.
func (h *WebhookHandler) RunOnce(ctx context.Context) (int, error) {
	w := h.cfg.Worker
	rows, err := h.cfg.Queue.LeaseWebhookEvents(ctx, store.LeaseRequest{Now: h.cfg.Now(), Limit: w.Batch, Lease: w.Lease, Owner: w.Owner})
	if err != nil {
		return 0, err
	}
	var wg sync.WaitGroup
	for _, row := range rows {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.work(ctx, row)
		}()
	}
	wg.Wait()
	return len(rows), nil
}

// prune deletes old finished rows, at most once per pruneEvery.
func (h *WebhookHandler) prune(ctx context.Context) {
	now := h.cfg.Now()
	if now.Sub(h.pruned) < pruneEvery {
		return
	}
	h.pruned = now
	if n, err := h.cfg.Queue.PruneWebhookEvents(ctx, now.Add(-h.cfg.Worker.Keep)); err != nil {
		h.cfg.Log.Info("pruning webhook events failed", "error", err.Error())
	} else if n > 0 {
		h.cfg.Log.V(1).Info("pruned webhook events", "rows", n)
	}
}

// work takes one leased row to its end or to its next attempt.
func (h *WebhookHandler) work(ctx context.Context, row store.WebhookEvent) {
	log := h.cfg.Log.WithValues("username", row.Username, "source", row.Source, "actor", row.Actor, "forge", row.Forge,
		"delivery", row.DeliveryID, "row", row.ID, "attempt", row.Attempt)
	var ev forge.Event
	result, err := "", json.Unmarshal(row.Payload, &ev)
	if err != nil {
		err = permanentError{fmt.Errorf("decoding the queued event: %w", err)}
	} else {
		log = log.WithValues("kind", ev.Kind, "action", ev.Action, "host", forgeHost(&ev))
		pctx, cancel := context.WithTimeout(ctx, h.cfg.Worker.Timeout)
		result, err = h.processRowSafely(pctx, row, &ev)
		cancel()
	}
	// A shutdown must not keep the row's report from the store.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	now, q, owner := h.cfg.Now(), h.cfg.Queue, h.cfg.Worker.Owner
	var perm permanentError
	switch {
	case err == nil:
		if err := q.FinishWebhookEvent(rctx, row.ID, owner, now); err != nil {
			log.Info("finishing a webhook event failed; it runs again", "error", err.Error())
			return
		}
		h.processed.WithLabelValues(row.Forge, result).Inc()
		if result == resultPublished {
			log.Info("webhook event published")
		} else {
			log.V(1).Info("webhook event not published by the source", "reason", result)
		}
	case errors.As(err, &perm) || now.Sub(row.Received) > h.cfg.Worker.MaxAge:
		h.processed.WithLabelValues(row.Forge, resultFailed).Inc()
		log.Error(err, "webhook event given up")
		if err := q.GiveUpWebhookEvent(rctx, row.ID, owner, now, truncate(err.Error())); err != nil {
			log.Info("giving up a webhook event failed; it returns when its lease ends", "error", err.Error())
		}
	default:
		h.processed.WithLabelValues(row.Forge, resultRetry).Inc()
		next := now.Add(h.backoff(row.Attempt))
		log.Info("processing webhook event failed; retrying, its source waits", "next", next.UTC().Format(time.RFC3339), "error", err.Error())
		if err := q.RetryWebhookEvent(rctx, row.ID, owner, next, truncate(err.Error())); err != nil {
			log.Info("releasing a webhook event failed; it returns when its lease ends", "error", err.Error())
		}
	}
}

// processRowSafely is processRow with a panic turned into the attempt's error: the row
// is retried later like any failed attempt, instead of the process dying with the row
// leased (its source's next events would then wait for the lease to end, 5 minutes).
func (h *WebhookHandler) processRowSafely(ctx context.Context, row store.WebhookEvent, ev *forge.Event) (result string, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("processing panicked: %v\n%s", p, debug.Stack())
		}
	}()
	return h.processRow(ctx, row, ev)
}

// processRow finds the row's actor and source as they are now and processes the event.
func (h *WebhookHandler) processRow(ctx context.Context, row store.WebhookEvent, ev *forge.Event) (string, error) {
	actor, src, err := h.cfg.Lookup(ctx, row.Username, row.Source)
	if err != nil {
		return "", fmt.Errorf("looking up %s/%s: %w", row.Username, row.Source, err)
	}
	if actor == nil || src == nil || src.Type == fedv1.SourceFeed {
		return "", permanentError{fmt.Errorf("the webhook %s/%s no longer exists", row.Username, row.Source)}
	}
	return h.process(ctx, actor, src, ev)
}

// process is what a webhook did before it was queued: Observe, scoping, Upstream,
// rendering and publishing. It returns the result to count, or an error; a
// permanentError is the event's own fault.
func (h *WebhookHandler) process(ctx context.Context, actor *fedv1.FederatedActor, src *fedv1.EventSource, ev *forge.Event) (string, error) {
	if h.cfg.Observe != nil {
		if err := h.cfg.Observe(ctx, actor, ev); err != nil {
			return "", fmt.Errorf("recording the event: %w", err)
		}
	}
	evs, reason, err := h.scoped(ctx, src, ev)
	if err != nil {
		return "", fmt.Errorf("scoping the event of %s: %w", ev.Repository.FullName, err)
	}
	if len(evs) == 0 {
		return reason, nil
	}
	base, err := h.cfg.Base(ctx)
	if err != nil {
		return "", fmt.Errorf("server base URL: %w", err)
	}
	target := render.TargetFor(base, actor, src, h.cfg.Now())
	if h.cfg.Upstream != nil {
		if target.Upstream, err = h.cfg.Upstream(ctx, actor, ev); err != nil {
			return "", fmt.Errorf("reading the upstream of offered pull requests: %w", err)
		}
	}
	var acts []store.Activity
	for _, e := range evs {
		a, err := render.Render(e, target)
		if errors.Is(err, forge.ErrIgnoredEvent) {
			if len(evs) > 1 {
				continue // a star, say: the topic announcement beside it still goes out
			}
			return resultIgnored, nil
		}
		if err != nil { // rendering reads nothing but the event: a retry renders the same
			return "", permanentError{fmt.Errorf("rendering: %w", err)}
		}
		acts = append(acts, a...)
	}
	if len(acts) == 0 {
		return resultIgnored, nil
	}
	if err := h.cfg.Publish(ctx, actor, src, acts); err != nil {
		return "", fmt.Errorf("publishing: %w", err)
	}
	return resultPublished, nil
}

// backoff is the wait after failed attempt n: BaseDelay·2^(n-1) capped at MaxDelay, with
// ±20 % jitter so that sources held back by an outage do not all return at once.
func (h *WebhookHandler) backoff(attempt int) time.Duration {
	w := h.cfg.Worker
	d := w.BaseDelay
	for i := 1; i < attempt && d < w.MaxDelay; i++ {
		d *= 2
	}
	d = min(d, w.MaxDelay)
	return time.Duration(float64(d) * (0.8 + 0.4*mrand.Float64()))
}

// forgeHost is the host of the event's forge, for logs.
func forgeHost(ev *forge.Event) string {
	if u, err := url.Parse(ev.Repository.WebURL); err == nil && u.Host != "" {
		return u.Host
	}
	return ""
}

func truncate(s string) string {
	if len(s) > 1000 {
		return s[:1000]
	}
	return s
}
