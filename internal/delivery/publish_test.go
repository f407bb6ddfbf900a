package delivery

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fedforge/fedforge/internal/store"
)

func TestTargets(t *testing.T) {
	tests := map[string]struct {
		in   []Recipient
		want []store.DeliveryTarget
	}{
		"shared inbox groups followers": {
			in: []Recipient{
				{Inbox: "https://m.example/users/a/inbox", SharedInbox: "https://m.example/inbox"},
				{Inbox: "https://m.example/users/b/inbox", SharedInbox: "https://m.example/inbox"},
			},
			want: []store.DeliveryTarget{{Inbox: "https://m.example/inbox", Host: "m.example"}},
		},
		"personal inbox without a shared one": {
			in: []Recipient{
				{Inbox: "https://f.example/u/a/inbox"},
				{Inbox: "https://f.example/u/b/inbox"},
				{Inbox: "https://f.example/u/a/inbox"},
			},
			want: []store.DeliveryTarget{
				{Inbox: "https://f.example/u/a/inbox", Host: "f.example"},
				{Inbox: "https://f.example/u/b/inbox", Host: "f.example"},
			},
		},
		"host is lower-cased with its port": {
			in:   []Recipient{{Inbox: "https://Peer.Example:8443/inbox"}},
			want: []store.DeliveryTarget{{Inbox: "https://Peer.Example:8443/inbox", Host: "peer.example:8443"}},
		},
		"unusable inboxes are skipped": {
			in: []Recipient{
				{Inbox: ""}, {Inbox: "/relative/inbox"}, {Inbox: "ftp://x.example/inbox"},
				{Inbox: "https://user:pw@x.example/inbox"}, {Inbox: "https://ok.example/inbox"},
			},
			want: []store.DeliveryTarget{{Inbox: "https://ok.example/inbox", Host: "ok.example"}},
		},
		"nothing": {in: nil, want: []store.DeliveryTarget{}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := Targets(tc.in); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Targets = %+v, want %+v", got, tc.want)
			}
		})
	}
}

type kickCounter struct{ n int }

func (k *kickCounter) Kick() { k.n++ }

func TestPublishIsOneTransactionAndIdempotent(t *testing.T) {
	s, _ := newStore(t)
	c := newClock()
	k := &kickCounter{}
	p := NewPublisher(s, k)
	to := []Recipient{
		{Inbox: "https://a.example/users/1/inbox", SharedInbox: "https://a.example/inbox"},
		{Inbox: "https://a.example/users/2/inbox", SharedInbox: "https://a.example/inbox"},
		{Inbox: "https://b.example/users/3/inbox"},
	}
	a := newActivity("publish", c.Now())
	for range 2 {
		if err := p.Publish(context.Background(), a, to); err != nil {
			t.Fatal(err)
		}
	}
	if k.n != 1 {
		t.Fatalf("kicked %d times, want once (the republish is a no-op)", k.n)
	}
	got, err := s.GetActivity(context.Background(), a.ID)
	if err != nil || string(got.Raw) != string(a.Raw) {
		t.Fatalf("published activity not in the outbox: %v", err)
	}
	if st := queueStats(t, s, c.Now()); st.Pending != 2 || st.Due != 2 {
		t.Fatalf("queue after publish: %+v, want 2 due rows", st)
	}
	bad := a
	bad.ID = ""
	if err := p.Publish(context.Background(), bad, to); err == nil || !strings.Contains(err.Error(), "2 inboxes") {
		t.Fatalf("publish of an invalid activity = %v", err)
	}
}

func TestMetricsAndSummary(t *testing.T) {
	f := newFediverse(t, 3, "metrics.test", nil)
	s, _ := newStore(t)
	c := newClock()
	reg := prometheus.NewPedanticRegistry()
	m, err := NewMetrics(reg, s)
	if err != nil {
		t.Fatal(err)
	}
	e := newExecutor(t, s, f, c, func(cfg *Config) { cfg.Metrics = m })
	f.peers[1].setMode(t, mode5xx)
	f.peers[2].setMode(t, modeBadRequest)
	to := f.followers(3, false)
	if err := NewPublisher(s, e).Publish(context.Background(), newActivity("metrics", c.Now()), to); err != nil {
		t.Fatal(err)
	}
	if _, err := e.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RecordHostFailure(context.Background(), "dead.example", c.Now(), 1); err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		"fedforge_delivery_delivered_total":                       1,
		`fedforge_delivery_failed_attempts_total{cause="4xx"}`:    1,
		`fedforge_delivery_failed_attempts_total{cause="5xx"}`:    1,
		`fedforge_delivery_given_up_total{reason="permanent"}`:    1,
		"fedforge_delivery_queued":                                1,
		"fedforge_delivery_due":                                   0,
		"fedforge_delivery_retrying":                              1,
		`fedforge_delivery_finished_rows{state="dead"}`:           1,
		`fedforge_delivery_finished_rows{state="delivered"}`:      1,
		`fedforge_delivery_host_unavailable{host="dead.example"}`: 1,
		`fedforge_delivery_hosts{state="unavailable"}`:            1,
		`fedforge_delivery_hosts{state="open"}`:                   0,
		`fedforge_delivery_hosts{state="half-open"}`:              0,
		"fedforge_delivery_queue_read_errors":                     0,
	}
	got := gather(t, reg)
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	sum, err := Summarize(context.Background(), s, c.Now())
	if err != nil {
		t.Fatal(err)
	}
	wantSum := Summary{Pending: 1, Due: 0, Retrying: 1, Delivered: 1, Dead: 1, UnavailableHosts: 1,
		UnavailableSample: []string{"dead.example"}, ObservedAt: c.Now()}
	if !reflect.DeepEqual(sum, wantSum) {
		t.Fatalf("Summary = %+v, want %+v", sum, wantSum)
	}
}

// gather flattens a registry into "name{label="value",...}" -> value.
func gather(t *testing.T, reg prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			if len(m.GetLabel()) > 0 {
				var parts []string
				for _, l := range m.GetLabel() {
					parts = append(parts, l.GetName()+"=\""+l.GetValue()+"\"")
				}
				key += "{" + strings.Join(parts, ",") + "}"
			}
			switch {
			case m.GetCounter() != nil:
				out[key] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				out[key] = m.GetGauge().GetValue()
			}
		}
	}
	return out
}
