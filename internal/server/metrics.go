package server

import (
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/metrics"
	"github.com/fedforge/fedforge/internal/store"
)

// serverMetrics are the Prometheus metrics of the inbox, the follow exchanges and the
// store's group commit. Every label takes values from a fixed list (a status class and
// reason from inboxReasons, an activity type from the verb table or "other", a direction
// and an exchange verb), never a host or an actor: a peer cannot grow the number of
// series. Per-host state is in fedforge_delivery_host_state, capped at 200 hosts.
type serverMetrics struct {
	requests   *prometheus.CounterVec
	verify     *prometheus.HistogramVec
	activities *prometheus.CounterVec
	exchanges  *prometheus.CounterVec
}

// Exchange verbs and directions of fedforge_exchange_activities_total.
const (
	exchFollow = "follow"
	exchAccept = "accept"
	exchReject = "reject"
	exchUndo   = "undo"
	dirIn      = "received"
	dirOut     = "sent"
)

// newServerMetrics registers the server's metrics on reg (already labelled with the
// server) and a collector of st's group-commit counts.
func newServerMetrics(reg prometheus.Registerer, st store.Store) (*serverMetrics, error) {
	var m serverMetrics
	var err error
	if m.requests, err = metrics.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fedforge_inbox_requests_total",
		Help: "Inbox POSTs by result (accepted, refused, error) and reason (ok, or why it was refused: rate_limited, forbidden, signature, malformed, not_found, too_large, unsupported_media_type, gone, internal).",
	}, []string{"result", "reason"})); err != nil {
		return nil, err
	}
	if m.verify, err = metrics.Register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "fedforge_inbox_signature_verification_seconds",
		Help:    "Time to verify an inbox request's HTTP signature, key fetch included, by result (verified, failed).",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"result"})); err != nil {
		return nil, err
	}
	if m.activities, err = metrics.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fedforge_inbox_activities_total",
		Help: "Verified inbox activities processed (replays excluded), by type (the inbox's verb table; other types count as other).",
	}, []string{"type"})); err != nil {
		return nil, err
	}
	if m.exchanges, err = metrics.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fedforge_exchange_activities_total",
		Help: "Follow exchanges by activity (follow, accept, reject, undo) and direction (received, sent).",
	}, []string{"activity", "direction"})); err != nil {
		return nil, err
	}
	if st != nil {
		// A server rebuilt in the same process (tests, local mode) finds its collector
		// registered: it then reads the new store, not the closed one.
		cc, err := metrics.Register(reg, &commitCollector{})
		if err != nil {
			return nil, err
		}
		cc.st.Store(&commitSource{st})
	}
	// Export every series of a bounded label set at zero, so that a dashboard and an
	// alert see them before the first request.
	for _, a := range []string{exchFollow, exchAccept, exchReject, exchUndo} {
		for _, d := range []string{dirIn, dirOut} {
			m.exchanges.WithLabelValues(a, d)
		}
	}
	m.requests.WithLabelValues("accepted", "ok")
	for _, r := range []string{"verified", "failed"} {
		m.verify.WithLabelValues(r)
	}
	return &m, nil
}

// inboxReasons names the refusals of the inbox by status: bounded, unlike the error text.
var inboxReasons = map[int]string{
	http.StatusBadRequest:            "malformed",
	http.StatusUnauthorized:          "signature",
	http.StatusForbidden:             "forbidden",
	http.StatusNotFound:              "not_found",
	http.StatusGone:                  "gone",
	http.StatusRequestEntityTooLarge: "too_large",
	http.StatusUnsupportedMediaType:  "unsupported_media_type",
	http.StatusTooManyRequests:       "rate_limited",
}

// request counts one inbox POST by the status it was answered with.
func (m *serverMetrics) request(status int) {
	if m == nil {
		return
	}
	result, reason := "accepted", "ok"
	switch {
	case status >= 500:
		result, reason = "error", "internal"
	case status >= 400:
		result = "refused"
		if reason = inboxReasons[status]; reason == "" {
			reason = "status_" + strconv.Itoa(status/100) + "xx"
		}
	}
	m.requests.WithLabelValues(result, reason).Inc()
}

// verified times one signature verification.
func (f *federation) verifyRequest(r *http.Request, body []byte) (*activitypub.Verified, error) {
	start := time.Now()
	v, err := f.verifier.VerifyRequest(r.Context(), r, body)
	if m := f.metrics; m != nil {
		result := "verified"
		if err != nil {
			result = "failed"
		}
		m.verify.WithLabelValues(result).Observe(time.Since(start).Seconds())
	}
	return v, err
}

// activity counts one verified, non-replayed activity by type.
func (m *serverMetrics) activity(typ string) {
	if m == nil {
		return
	}
	if _, ok := verbs[typ]; !ok {
		typ = "other"
	}
	m.activities.WithLabelValues(typ).Inc()
}

// exchange counts one Follow, Accept, Reject or Undo received or sent.
func (m *serverMetrics) exchange(activity, direction string) {
	if m == nil {
		return
	}
	m.exchanges.WithLabelValues(activity, direction).Inc()
}

// commitCollector exports the received log's group-commit counts at scrape time, from
// the store set last.
type commitCollector struct{ st atomic.Pointer[commitSource] }

// commitSource holds the store, whatever its concrete type (tests wrap stores).
type commitSource struct{ store.GroupCommits }

var (
	descBatchRows = prometheus.NewDesc("fedforge_store_received_batch_rows",
		"Rows per group-committed transaction of the received log (the inbox's durable write before its 202).", nil, nil)
	descPendingRows = prometheus.NewDesc("fedforge_store_received_pending_rows",
		"Received-log rows waiting for the group-commit writer now (the inbox's write queue depth).", nil, nil)
)

// Describe implements prometheus.Collector.
func (c *commitCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descBatchRows
	ch <- descPendingRows
}

// Collect implements prometheus.Collector.
func (c *commitCollector) Collect(ch chan<- prometheus.Metric) {
	src := c.st.Load()
	if src == nil {
		return
	}
	s := src.GroupCommitStats()
	buckets := make(map[float64]uint64, len(store.GroupCommitBuckets))
	for i, le := range store.GroupCommitBuckets {
		buckets[float64(le)] = uint64(s.BatchesUpTo[i])
	}
	ch <- prometheus.MustNewConstHistogram(descBatchRows, uint64(s.Batches), float64(s.Rows), buckets)
	ch <- prometheus.MustNewConstMetric(descPendingRows, prometheus.GaugeValue, float64(s.Pending))
}
