package sources

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fedforge/fedforge/internal/store"
)

// queueStatsTTL is how long one reading of the webhook queue serves scrapes.
const queueStatsTTL = 10 * time.Second

var (
	queueRowsDesc = prometheus.NewDesc("fedforge_webhook_queue_rows",
		"Rows of the webhook queue by state: pending (accepted, not yet processed), retrying (pending after a failed attempt), dead (given up, kept a week). The queue is shared: every replica reports the same figures.",
		[]string{"state"}, nil)
	queueAgeDesc = prometheus.NewDesc("fedforge_webhook_queue_oldest_pending_seconds",
		"Age of the oldest accepted webhook event not yet processed (0 when none): a growing value is a backlog.",
		nil, nil)
)

// queueCollector exports the webhook queue's depth and age, read from the store at
// scrape time (at most once per queueStatsTTL), so that an operator sees a backlog.
// One collector serves a registry whatever the number of handlers built on it (a server
// rebuilt in the same process, with a new store): it reads the queue of the newest
// handler whose worker has not ended, and exports nothing when there is none. Bound to
// the first handler's queue instead, it read a closed store once that server had
// stopped, and every scrape of the endpoint failed with 500.
type queueCollector struct {
	now func() time.Time

	mu     sync.Mutex
	queues []store.WebhookEvents // the live handlers' queues, newest last
	read   store.WebhookEvents   // the queue st and err were read from
	at     time.Time
	st     store.WebhookEventStats
	err    error
}

func newQueueCollector(now func() time.Time) *queueCollector {
	return &queueCollector{now: now}
}

// attach makes q the queue the collector reads, until detach.
func (c *queueCollector) attach(q store.WebhookEvents) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.queues = append(c.queues, q)
}

// detach forgets q (its handler's worker has ended, its store may close); the collector
// reads the queue attached before it again, if any.
func (c *queueCollector) detach(q store.WebhookEvents) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i := slices.Index(c.queues, q); i >= 0 {
		c.queues = slices.Delete(c.queues, i, i+1)
	}
}

// Describe implements prometheus.Collector.
func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- queueRowsDesc
	ch <- queueAgeDesc
}

// Collect implements prometheus.Collector; a store error is reported to the scraper.
func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	if len(c.queues) == 0 {
		c.mu.Unlock()
		return
	}
	q := c.queues[len(c.queues)-1]
	now := c.now()
	if q != c.read || c.at.IsZero() || now.Sub(c.at) >= queueStatsTTL || now.Before(c.at) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c.st, c.err = q.WebhookEventStats(ctx)
		cancel()
		c.read, c.at = q, now
	}
	st, err := c.st, c.err
	c.mu.Unlock()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(queueRowsDesc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(queueRowsDesc, prometheus.GaugeValue, float64(st.Pending), "pending")
	ch <- prometheus.MustNewConstMetric(queueRowsDesc, prometheus.GaugeValue, float64(st.Retrying), "retrying")
	ch <- prometheus.MustNewConstMetric(queueRowsDesc, prometheus.GaugeValue, float64(st.Dead), "dead")
	age := 0.0
	if !st.OldestPending.IsZero() {
		age = max(0, now.Sub(st.OldestPending).Seconds())
	}
	ch <- prometheus.MustNewConstMetric(queueAgeDesc, prometheus.GaugeValue, age)
}
