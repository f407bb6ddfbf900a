package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
)

// scrape reads a running server's /metrics over HTTP.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	must(t, err)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		t.Fatalf("GET /metrics: %d: %s", resp.StatusCode, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	must(t, err)
	return fams
}

// value sums the samples of a family whose labels include want (counter, gauge, or a
// histogram's count).
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
	sum := 0.0
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		ok := true
		for k, v := range want {
			ok = ok && labels[k] == v
		}
		if !ok {
			continue
		}
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		}
	}
	return sum
}

// labelValues finds the metric named in Grafana's label_values(metric, label).
var labelValues = regexp.MustCompile(`label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)`)

// dashboardMetrics returns every metric name the dashboard's queries read, parsed with
// Prometheus's own PromQL parser, mapped to the panels that read it.
func dashboardMetrics(t *testing.T, path string) map[string][]string {
	t.Helper()
	raw, err := os.ReadFile(path)
	must(t, err)
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	must(t, json.Unmarshal(raw, &d))
	// Grafana's variables are strings in the query; give them a value PromQL accepts.
	vars := strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$server", ".*")
	out := map[string][]string{}
	p := parser.NewParser(parser.Options{})
	for _, panel := range d.Panels {
		for _, tg := range panel.Targets {
			expr, err := p.ParseExpr(vars.Replace(tg.Expr))
			if err != nil {
				t.Errorf("panel %q: query %q does not parse: %v", panel.Title, tg.Expr, err)
				continue
			}
			n := 0
			parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
				if vs, ok := node.(*parser.VectorSelector); ok {
					out[vs.Name] = append(out[vs.Name], panel.Title)
					n++
				}
				return nil
			})
			if n == 0 {
				t.Errorf("panel %q: query %q reads no metric", panel.Title, tg.Expr)
			}
		}
	}
	for _, v := range d.Templating.List {
		for _, m := range labelValues.FindAllStringSubmatch(v.Definition, -1) {
			out[m[1]] = append(out[m[1]], "variable "+v.Definition)
		}
	}
	return out
}

// alertExpr finds the PrometheusRule expressions in a Markdown page (one line each).
var alertExpr = regexp.MustCompile(`(?m)^\s*expr: (.+)$`)

// alertMetrics returns the metrics the example alerts of a Markdown page read.
func alertMetrics(t *testing.T, path string) map[string][]string {
	t.Helper()
	raw, err := os.ReadFile(path)
	must(t, err)
	out := map[string][]string{}
	p := parser.NewParser(parser.Options{})
	for _, m := range alertExpr.FindAllStringSubmatch(string(raw), -1) {
		expr, err := p.ParseExpr(m[1])
		if err != nil {
			t.Errorf("%s: alert %q does not parse: %v", path, m[1], err)
			continue
		}
		parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
			if vs, ok := node.(*parser.VectorSelector); ok {
				out[vs.Name] = append(out[vs.Name], "alert "+m[1])
			}
			return nil
		})
	}
	return out
}

// exported reports whether a series name is in the scrape: a histogram's _bucket, _sum
// and _count series belong to its family.
func exported(fams map[string]*dto.MetricFamily, name string) bool {
	if fams[name] != nil {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			if f := fams[base]; f != nil && (f.GetType() == dto.MetricType_HISTOGRAM || f.GetType() == dto.MetricType_SUMMARY) {
				return true
			}
		}
	}
	return false
}

// TestMetricsAndDashboard drives a real server through a follow, refused inbox requests
// and its three sources, scrapes its /metrics over HTTP, checks the counts, and checks
// that every metric the Grafana dashboard's queries name is exported.
func TestMetricsAndDashboard(t *testing.T) {
	// Not parallel: the delivery and inbox counters live in controller-runtime's process-wide
	// registry under the label server="alpha/forge", which every pair's alpha shares; a
	// concurrent test's counts would satisfy the checks below. Serial tests run before the
	// parallel ones start, so this one sees only its own.
	// A feed that always fails, so the poller counts an error.
	ln, err := net.Listen("tcp", "127.0.0.7:0")
	must(t, err)
	feed := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "down", 503) })}
	go func() { _ = feed.Serve(ln) }()
	t.Cleanup(func() { _ = feed.Close() })

	p := newPair(t)
	ctx := context.Background()
	must(t, p.k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "alpha", Name: "hooks"},
		StringData: map[string]string{"gitea": "gitea-secret"}}))
	p.actor(t, p.alpha, "releases", "releases", false)
	p.actor(t, p.beta, "watcher", "watcher", false)
	var a fedv1.FederatedActor
	must(t, p.k8s.Get(ctx, client.ObjectKey{Namespace: "alpha", Name: "releases"}, &a))
	patch := client.MergeFrom(a.DeepCopy())
	a.Spec.Sources = []fedv1.EventSource{
		{Name: "gitea", Type: fedv1.SourceGitea, SecretRef: &fedv1.SecretKeyReference{Name: "hooks", Key: "gitea"}},
		{Name: "feed", Type: fedv1.SourceFeed, Feed: &fedv1.FeedSource{URL: "http://" + ln.Addr().String() + "/feed.atom", Interval: &metav1.Duration{Duration: time.Minute}}},
	}
	must(t, p.k8s.Patch(ctx, &a, patch))

	p.follow(t, p.beta, "watch-releases", "watcher", p.alpha.base()+"/actors/releases")
	p.phase(t, "beta", "watch-releases", fedv1.PhaseAccepted)
	follow := []byte(fmt.Sprintf(`{"id":"%s/f/1","type":"Follow","actor":"%s/actors/watcher","object":"%s/actors/releases"}`, p.beta.base(), p.beta.base(), p.alpha.base()))
	if code, _ := post(t, p.alpha, "/inbox", follow, "application/activity+json", nil); code != http.StatusUnauthorized {
		t.Fatalf("unsigned Follow: %d, want 401", code)
	}
	if code, _ := post(t, p.alpha, "/inbox", follow, "text/plain", nil); code != http.StatusUnsupportedMediaType {
		t.Fatalf("text/plain: %d, want 415", code)
	}
	eventually(t, 30*time.Second, func() error {
		req, _ := http.NewRequest(http.MethodPost, "http://"+p.alpha.listen+"/hooks/releases/gitea", bytes.NewReader([]byte(`{}`)))
		req.Host = alphaHost
		req.Header.Set("X-Gitea-Event", "push")
		req.Header.Set("X-Gitea-Signature", "00")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			return fmt.Errorf("webhook with a wrong signature: %d, want 401 once the source is served", resp.StatusCode)
		}
		return nil
	})
	req, _ := http.NewRequest(http.MethodPost, "http://"+p.alpha.listen+"/actors/releases/outbox", bytes.NewReader([]byte(`{}`)))
	req.Host = alphaHost
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	resp.Body.Close()

	alpha := map[string]string{"server": "alpha/forge"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{"server": "alpha/forge"}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	var fams map[string]*dto.MetricFamily
	eventually(t, 30*time.Second, func() error {
		fams = scrape(t, p.alpha.metrics)
		checks := []struct {
			name string
			with map[string]string
		}{
			{"fedforge_inbox_requests_total", with("result", "accepted", "reason", "ok")},
			{"fedforge_inbox_requests_total", with("result", "refused", "reason", "signature")},
			{"fedforge_inbox_requests_total", with("result", "refused", "reason", "unsupported_media_type")},
			{"fedforge_inbox_signature_verification_seconds", with("result", "verified")},
			{"fedforge_inbox_signature_verification_seconds", with("result", "failed")},
			{"fedforge_inbox_activities_total", with("type", "Follow")},
			{"fedforge_exchange_activities_total", with("activity", "follow", "direction", "received")},
			{"fedforge_exchange_activities_total", with("activity", "accept", "direction", "sent")},
			{"fedforge_webhook_requests_total", with("forge", string(fedv1.SourceGitea), "result", "unauthorized")},
			{"fedforge_feed_polls_total", with("result", "error")},
			{"fedforge_outbox_posts_total", with("result", "unauthorized")},
			{"fedforge_store_received_batch_rows", alpha},
			{"fedforge_delivery_delivered_total", alpha},
		}
		for _, c := range checks {
			if v := value(fams, c.name, c.with); v < 1 {
				return fmt.Errorf("%s%v = %v, want >= 1", c.name, c.with, v)
			}
		}
		return nil
	})
	// The beta side of the same exchange is counted under beta's server label.
	if v := value(fams, "fedforge_exchange_activities_total", map[string]string{"server": "beta/forge", "activity": "accept", "direction": "received"}); v < 1 {
		t.Errorf("beta's accepts received = %v, want >= 1", v)
	}
	// No label of ours carries a host or an actor: each series set is bounded.
	for name, f := range fams {
		if !strings.HasPrefix(name, "fedforge_") || name == "fedforge_delivery_host_state" || name == "fedforge_delivery_host_unavailable" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "host" || l.GetName() == "actor" || strings.Contains(l.GetValue(), "fedforge.test") {
					t.Errorf("%s has an unbounded label %s=%q", name, l.GetName(), l.GetValue())
				}
			}
		}
	}

	used := dashboardMetrics(t, filepath.Join("..", "..", "config", "grafana", "fedforge-dashboard.json"))
	if len(used) < 10 {
		t.Fatalf("the dashboard reads %d metrics; the parse found too few: %v", len(used), used)
	}
	alerts := alertMetrics(t, filepath.Join("..", "..", "docs", "operations.md"))
	if len(alerts) < 5 {
		t.Fatalf("docs/operations.md's alerts read %d metrics; the parse found too few: %v", len(alerts), alerts)
	}
	for name, rules := range alerts {
		used[name] = append(used[name], rules...)
	}
	var missing []string
	for name, panels := range used {
		if !exported(fams, name) {
			missing = append(missing, fmt.Sprintf("%s (panels %q)", name, panels))
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("the dashboard or the alerts read metrics the server does not export:\n%s", strings.Join(missing, "\n"))
	}
}
