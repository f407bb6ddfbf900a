package delivery

import (
	"testing"
	"time"
)

func TestBreakerOpensProbesAndCloses(t *testing.T) {
	c := newClock()
	b := NewBreaker(BreakerConfig{Threshold: 3, Cooldown: time.Minute, MaxCooldown: 4 * time.Minute, Now: c.Now})
	const h = "peer.test"
	if b.Success(h) != true {
		t.Fatal("first success of an unknown host must be written (the store may hold old failures)")
	}
	if b.Success(h) != false {
		t.Fatal("a second success of a clean host must not be written again")
	}
	for i := range 2 {
		b.Failure(h, 0)
		if d := b.Allow(h); !d.Allow || d.State != Closed {
			t.Fatalf("after %d failures: %+v, want closed", i+1, d)
		}
	}
	b.Failure(h, 0)
	d := b.Allow(h)
	if d.Allow || d.State != Open || !d.Until.Equal(c.Now().Add(time.Minute)) {
		t.Fatalf("after 3 failures: %+v, want open for 1 min", d)
	}
	// Cooldowns double on failed probes and are capped.
	for _, cool := range []time.Duration{2 * time.Minute, 4 * time.Minute, 4 * time.Minute} {
		c.Add(b.Allow(h).Until.Sub(c.Now()))
		probe := b.Allow(h)
		if !probe.Allow || !probe.Probe || probe.State != HalfOpen {
			t.Fatalf("after the cooldown: %+v, want one probe", probe)
		}
		waiter := b.Allow(h)
		if waiter.Allow || waiter.Wait == nil {
			t.Fatalf("second request during the probe: %+v, want to wait", waiter)
		}
		b.Failure(h, 0)
		select {
		case <-waiter.Wait:
		default:
			t.Fatal("a failed probe did not wake the waiting rows")
		}
		if d := b.Allow(h); d.State != Open || !d.Until.Equal(c.Now().Add(cool)) {
			t.Fatalf("after a failed probe: %+v, want open for %s", d, cool)
		}
	}
	c.Add(5 * time.Minute)
	probe := b.Allow(h)
	waiter := b.Allow(h)
	if !probe.Probe || waiter.Wait == nil {
		t.Fatalf("probe %+v waiter %+v", probe, waiter)
	}
	if !b.Success(h) {
		t.Fatal("a success after failures must be written")
	}
	<-waiter.Wait
	if d := b.Allow(h); !d.Allow || d.State != Closed {
		t.Fatalf("after a successful probe: %+v, want closed", d)
	}
	if got := b.Snapshot(); len(got) != 0 {
		t.Fatalf("Snapshot of a healthy breaker = %+v", got)
	}
}

func TestBreakerMergesStoreCountsAndAbandon(t *testing.T) {
	c := newClock()
	b := NewBreaker(BreakerConfig{Threshold: 5, Cooldown: time.Minute, Now: c.Now})
	// Another worker already failed 9 times: one local failure with the store's count opens.
	b.Failure("a.test", 10)
	if st := b.State("a.test"); st != Open {
		t.Fatalf("state = %s, want open", st)
	}
	c.Add(2 * time.Minute)
	p := b.Allow("a.test")
	w := b.Allow("a.test")
	b.Abandon("a.test") // the probe never reached the host (shutdown)
	<-w.Wait
	if again := b.Allow("a.test"); !again.Probe {
		t.Fatalf("after an abandoned probe: %+v, want a new probe", again)
	}
	_ = p
	// A late failure from a request sent before the circuit opened does not extend it.
	b.Failure("b.test", 5)
	until := b.Allow("b.test").Until
	c.Add(10 * time.Second)
	b.Failure("b.test", 6)
	if got := b.Allow("b.test").Until; !got.Equal(until) {
		t.Fatalf("late failure moved the reopen from %s to %s", until, got)
	}
}

func TestBreakerUnavailableSync(t *testing.T) {
	c := newClock()
	b := NewBreaker(BreakerConfig{Now: c.Now})
	b.SetUnavailable("x.test", true)
	b.SyncUnavailable([]string{"y.test"})
	tests := map[string]CircuitState{"x.test": Closed, "y.test": Unavailable, "z.test": Closed}
	for h, want := range tests {
		if got := b.State(h); got != want {
			t.Errorf("%s: %s, want %s", h, got, want)
		}
	}
	if d := b.Allow("y.test"); d.Allow || d.State != Unavailable {
		t.Fatalf("unavailable host allowed: %+v", d)
	}
	snap := b.Snapshot()
	if len(snap) != 1 || snap[0].Host != "y.test" || snap[0].State != Unavailable {
		t.Fatalf("Snapshot = %+v", snap)
	}
}
