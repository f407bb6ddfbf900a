package delivery

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"
)

// scaleEnv set to "full" runs the fault and crash tests at the scale (1,000
// hosts, 10,000 followers); plain `go test` runs them smaller so it stays fast.
const scaleEnv = "FEDFORGE_DELIVERY_SCALE"

func fullScale() bool { return os.Getenv(scaleEnv) == "full" }

// mixedFollowers spreads n followers over the peers: hosts with an even index have a
// shared inbox, the others only personal inboxes.
func (f *fediverse) mixedFollowers(n int) []Recipient {
	out := make([]Recipient, 0, n)
	for i := range n {
		h := i % len(f.peers)
		r := Recipient{Inbox: fmt.Sprintf("http://%s/users/u%d/inbox", f.host(h), i)}
		if h%2 == 0 {
			r.SharedInbox = fmt.Sprintf("http://%s/inbox", f.host(h))
		}
		out = append(out, r)
	}
	return out
}

// TestFaultsAllDeliveredOnceHostsAreBack: 20 % of the hosts fail in four ways (5xx,
// no answer, refused connections, bodies slower than the timeout) for a compressed day
// while two activities fan out; once they are back, every delivery is made, exactly
// once per inbox, and none is given up.
func TestFaultsAllDeliveredOnceHostsAreBack(t *testing.T) {
	hosts, followers, conc := 50, 500, 16
	if fullScale() {
		hosts, followers = 1000, 10000
	}
	f := newFediverse(t, hosts, "faults.test", nil)
	// Timeouts are long enough that a healthy answer is never mistaken for a failure
	// (which would make a legitimate at-least-once duplicate), short enough to be quick.
	f.readTimeout, f.totalTimeout = time.Second, 2*time.Second
	if fullScale() {
		// Thousands of rows due at once keep both cores busy signing; give a healthy
		// loopback answer time to be scheduled.
		f.readTimeout, f.totalTimeout = 2*time.Second, 4*time.Second
	}
	s, _ := newStore(t)
	c := newClock()
	e := newExecutor(t, s, f, c, func(cfg *Config) { cfg.Concurrency, cfg.Batch = conc, conc })
	faults := []int32{mode5xx, modeTimeout, modeRefused, modeSlowBody}
	var failing []*peer
	for i := 0; i < hosts; i += 5 {
		p := f.peers[i+2] // odd and even hosts alike: shared and personal inboxes fail
		p.setMode(t, faults[len(failing)%len(faults)])
		failing = append(failing, p)
	}
	to := f.mixedFollowers(followers)
	rowsPer := len(Targets(to))
	pub := NewPublisher(s, e)
	ctx := context.Background()
	var ids []string
	start := time.Now()
	for i := range 2 {
		a := newActivity(fmt.Sprintf("faults-%d", i), c.Now())
		ids = append(ids, a.ID)
		if err := pub.Publish(ctx, a, to); err != nil {
			t.Fatal(err)
		}
		for range 3 { // 12 compressed hours per activity, one round every 4 h
			if _, err := e.RunOnce(ctx); err != nil {
				t.Fatal(err)
			}
			c.Add(4 * time.Hour)
		}
	}
	st := queueStats(t, s, c.Now())
	if st.Pending == 0 || st.Dead != 0 {
		t.Fatalf("queue during the outage: %+v", st)
	}
	var during int
	for _, p := range failing {
		a, _, _, _ := p.stats()
		during += a
	}
	for _, p := range failing {
		p.setMode(t, modeOK)
	}
	rounds := drain(t, e, s, c, 15*time.Minute, 200)
	f.checkTargets(t, ids, to, true)
	st = queueStats(t, s, c.Now())
	if st.Dead != 0 || st.Delivered != int64(2*rowsPer) {
		t.Fatalf("queue after recovery: %+v, want %d delivered and none dead", st, 2*rowsPer)
	}
	if hs, _ := s.ListUnavailableHosts(ctx); len(hs) != 0 {
		t.Fatalf("hosts left unavailable after a one-day outage: %d", len(hs))
	}
	t.Logf("%d hosts (%d failing), %d rows per activity; %d requests to failing hosts during the outage; "+
		"drained in %d rounds of 15 compressed minutes; wall time %s",
		hosts, len(failing), rowsPer, during, rounds, time.Since(start).Round(time.Millisecond))
}
