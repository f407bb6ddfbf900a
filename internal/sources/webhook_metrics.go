package sources

import (
	"context"
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
type queueCollector struct {
	q   store.WebhookEvents
	now func() time.Time

	mu  sync.Mutex
	at  time.Time
	st  store.WebhookEventStats
	err error
}

func newQueueCollector(q store.WebhookEvents, now func() time.Time) *queueCollector {
	return &queueCollector{q: q, now: now}
}

// Describe implements prometheus.Collector.
func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- queueRowsDesc
	ch <- queueAgeDesc
}

// Collect implements prometheus.Collector; a store error is reported to the scraper.
func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	now := c.now()
	if c.at.IsZero() || now.Sub(c.at) >= queueStatsTTL || now.Before(c.at) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c.st, c.err = c.q.WebhookEventStats(ctx)
		cancel()
		c.at = now
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
