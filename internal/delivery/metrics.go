package delivery

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// maxHostSeries bounds the per-host series, so a storm of failing peers cannot blow up
// the scrape; the per-state counts stay exact.
const maxHostSeries = 200

// statsCacheTTL is how long one QueueStats reading serves scrapes.
const statsCacheTTL = 10 * time.Second

// Metrics are the delivery collectors. Counters are fed by the Executor it is given to;
// gauges are read from the queue (one QueueStats per scrape at most every 10 s) and
// from the executor's breaker. All methods are safe on a nil *Metrics.
type Metrics struct {
	delivered prometheus.Counter
	failed    *prometheus.CounterVec
	givenUp   *prometheus.CounterVec
	heldBackC *prometheus.CounterVec

	stats Stats
	now   func() time.Time

	mu      sync.Mutex
	breaker *Breaker
	cached  queueReading
}

type queueReading struct {
	at          time.Time
	pending     float64
	due         float64
	retrying    float64
	delivered   float64
	dead        float64
	unavailable []string
	err         error
}

var (
	descQueued      = prometheus.NewDesc("fedforge_delivery_queued", "Deliveries still to be attempted (due, leased or waiting for a retry).", nil, nil)
	descDue         = prometheus.NewDesc("fedforge_delivery_due", "Deliveries that can be leased now.", nil, nil)
	descRetrying    = prometheus.NewDesc("fedforge_delivery_retrying", "Queued deliveries that failed at least once.", nil, nil)
	descFinished    = prometheus.NewDesc("fedforge_delivery_finished_rows", "Finished deliveries kept in the queue, by state (delivered, dead).", []string{"state"}, nil)
	descHosts       = prometheus.NewDesc("fedforge_delivery_hosts", "Hosts whose circuit is not closed, by state (open, half-open, unavailable).", []string{"state"}, nil)
	descHostState   = prometheus.NewDesc("fedforge_delivery_host_state", "1 for each host whose circuit is open, half-open or unavailable (at most 200 hosts).", []string{"host", "state"}, nil)
	descUnavailable = prometheus.NewDesc("fedforge_delivery_host_unavailable", "1 for each host marked unavailable after failures on 7 distinct days (at most 200 hosts).", []string{"host"}, nil)
	descScrapeError = prometheus.NewDesc("fedforge_delivery_queue_read_errors", "1 when the last read of the queue for these metrics failed.", nil, nil)
)

// NewMetrics makes the delivery collectors and registers them on reg. stats (the store
// or a RemoteQueue; may be nil in a Job) feeds the queue gauges.
func NewMetrics(reg prometheus.Registerer, stats Stats) (*Metrics, error) {
	m := &Metrics{
		delivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fedforge_delivery_delivered_total", Help: "Deliveries a peer answered with 2xx.",
		}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fedforge_delivery_failed_attempts_total", Help: "Delivery attempts that did not get a 2xx, by cause (network, 3xx, 4xx, 5xx).",
		}, []string{"cause"}),
		givenUp: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fedforge_delivery_given_up_total", Help: "Deliveries given up, by reason (permanent: a 4xx, 501 or refused target, or retries exhausted; gone: 410).",
		}, []string{"reason"}),
		heldBackC: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fedforge_delivery_held_back_total", Help: "Deliveries not attempted because the host's circuit was open or the host unavailable.",
		}, []string{"state"}),
		stats: stats,
		now:   time.Now,
	}
	// Every label value exported at zero from the start, so that dashboards and alerts
	// (config/grafana, docs/operations.md) see the series before the first failure.
	for _, c := range []string{"network", "local", "3xx", "4xx", "5xx"} {
		m.failed.WithLabelValues(c)
	}
	m.givenUp.WithLabelValues("permanent")
	m.givenUp.WithLabelValues("gone")
	for _, st := range []CircuitState{Open, HalfOpen, Unavailable} {
		m.heldBackC.WithLabelValues(string(st))
	}
	for _, c := range []prometheus.Collector{m.delivered, m.failed, m.givenUp, m.heldBackC, m} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("delivery: registering metrics: %w", err)
		}
	}
	return m, nil
}

// Unregister removes the metrics from reg, so that a server rebuilt in the same process
// (tests, a restart in local mode) exports its own queue and not a closed store's.
func (m *Metrics) Unregister(reg prometheus.Registerer) {
	for _, c := range []prometheus.Collector{m.delivered, m.failed, m.givenUp, m.heldBackC, m} {
		reg.Unregister(c)
	}
}

// attach lets the gauges report the circuits of the executor that uses m, on its clock.
func (m *Metrics) attach(b *Breaker, now func() time.Time) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.breaker, m.now = b, now
	m.mu.Unlock()
}

// attempt counts the result of one request.
func (m *Metrics) attempt(o Outcome) {
	if m == nil || o.Action == Delivered {
		return
	}
	cause := "network"
	switch {
	case o.Status >= 500:
		cause = "5xx"
	case o.Status >= 400:
		cause = "4xx"
	case o.Status >= 300:
		cause = "3xx"
	case o.Status == 0 && !o.HostDown:
		cause = "local"
	}
	m.failed.WithLabelValues(cause).Inc()
}

// outcome counts how a row ended (or that it will be retried).
func (m *Metrics) outcome(a Action) {
	if m == nil {
		return
	}
	switch a {
	case Delivered:
		m.delivered.Inc()
	case Drop:
		m.givenUp.WithLabelValues("permanent").Inc()
	case Gone:
		m.givenUp.WithLabelValues("gone").Inc()
	}
}

// heldBack counts a row the breaker did not let through.
func (m *Metrics) heldBack(st CircuitState) {
	if m == nil {
		return
	}
	m.heldBackC.WithLabelValues(string(st)).Inc()
}

// Describe implements prometheus.Collector for the gauges.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descQueued, descDue, descRetrying, descFinished, descHosts, descHostState, descUnavailable, descScrapeError} {
		ch <- d
	}
}

// read returns the queue reading, refreshed when older than statsCacheTTL.
func (m *Metrics) read() queueReading {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if m.stats == nil || (!m.cached.at.IsZero() && now.Sub(m.cached.at) < statsCacheTTL) {
		return m.cached
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r := queueReading{at: now}
	st, err := m.stats.QueueStats(ctx, now)
	if err == nil {
		r.pending, r.due, r.retrying = float64(st.Pending), float64(st.Due), float64(st.Retrying)
		r.delivered, r.dead = float64(st.Delivered), float64(st.Dead)
		r.unavailable, err = unavailableNames(ctx, m.stats)
	}
	r.err = err
	m.cached = r
	return r
}

// unavailableNames returns the sorted names of the unavailable hosts.
func unavailableNames(ctx context.Context, s Stats) ([]string, error) {
	hs, err := s.ListUnavailableHosts(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.Host
	}
	sort.Strings(out)
	return out, nil
}

// Collect implements prometheus.Collector for the gauges.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	r := m.read()
	errVal := 0.0
	if r.err != nil {
		errVal = 1
	}
	ch <- prometheus.MustNewConstMetric(descScrapeError, prometheus.GaugeValue, errVal)
	if m.stats != nil && r.err == nil {
		ch <- prometheus.MustNewConstMetric(descQueued, prometheus.GaugeValue, r.pending)
		ch <- prometheus.MustNewConstMetric(descDue, prometheus.GaugeValue, r.due)
		ch <- prometheus.MustNewConstMetric(descRetrying, prometheus.GaugeValue, r.retrying)
		ch <- prometheus.MustNewConstMetric(descFinished, prometheus.GaugeValue, r.delivered, "delivered")
		ch <- prometheus.MustNewConstMetric(descFinished, prometheus.GaugeValue, r.dead, "dead")
		for i, h := range r.unavailable {
			if i == maxHostSeries {
				break
			}
			ch <- prometheus.MustNewConstMetric(descUnavailable, prometheus.GaugeValue, 1, h)
		}
	}
	m.mu.Lock()
	b := m.breaker
	m.mu.Unlock()
	counts := map[CircuitState]int{Open: 0, HalfOpen: 0, Unavailable: 0}
	if b != nil {
		for i, hc := range b.Snapshot() {
			counts[hc.State]++
			if i < maxHostSeries {
				ch <- prometheus.MustNewConstMetric(descHostState, prometheus.GaugeValue, 1, hc.Host, string(hc.State))
			}
		}
	}
	if m.stats != nil && r.err == nil {
		counts[Unavailable] = len(r.unavailable) // the store knows hosts this process never met
	}
	for st, n := range counts {
		ch <- prometheus.MustNewConstMetric(descHosts, prometheus.GaugeValue, float64(n), string(st))
	}
}

// maxSummaryHosts bounds the host names a Summary carries into object status.
const maxSummaryHosts = 10

// Summary is the delivery state the server writes into FederationServer status (at most
// once a minute): queue counts and the hosts marked unavailable.
type Summary struct {
	// Pending deliveries will be attempted; Due of them can go now.
	Pending, Due int64
	// Retrying deliveries failed at least once and wait for their next attempt.
	Retrying int64
	// Delivered and Dead are finished rows still kept.
	Delivered, Dead int64
	// UnavailableHosts counts hosts marked unavailable.
	UnavailableHosts int
	// UnavailableSample names up to 10 of them, sorted.
	UnavailableSample []string
	// ObservedAt is when the queue was read.
	ObservedAt time.Time
}

// Summarize reads the queue and the unavailable hosts at now.
func Summarize(ctx context.Context, s Stats, now time.Time) (Summary, error) {
	st, err := s.QueueStats(ctx, now)
	if err != nil {
		return Summary{}, fmt.Errorf("delivery: summary: %w", err)
	}
	names, err := unavailableNames(ctx, s)
	if err != nil {
		return Summary{}, fmt.Errorf("delivery: summary: %w", err)
	}
	sum := Summary{
		Pending: st.Pending, Due: st.Due, Retrying: st.Retrying, Delivered: st.Delivered, Dead: st.Dead,
		UnavailableHosts: len(names), ObservedAt: now,
	}
	for i, h := range names {
		if i == maxSummaryHosts {
			break
		}
		sum.UnavailableSample = append(sum.UnavailableSample, h)
	}
	return sum, nil
}
