package delivery

import (
	"sort"
	"sync"
	"time"
)

// Defaults of BreakerConfig.
const (
	// DefaultBreakerThreshold is how many consecutive failures open a host's circuit.
	DefaultBreakerThreshold = 5
	// DefaultBreakerCooldown is the first open period; it doubles on every failed probe.
	DefaultBreakerCooldown = time.Minute
	// DefaultBreakerMaxCooldown caps the open period, so a host that comes back is
	// noticed within the hour.
	DefaultBreakerMaxCooldown = time.Hour
	// DefaultUnavailableAfterDays is Mastodon's rule: failures on 7 distinct days.
	DefaultUnavailableAfterDays = 7
)

// BreakerConfig tunes the per-host circuit breaker.
type BreakerConfig struct {
	// Threshold is the number of consecutive failures that opens the circuit.
	Threshold int
	// Cooldown is how long the circuit stays open after it first opens.
	Cooldown time.Duration
	// MaxCooldown caps the open period, which doubles after each failed probe.
	MaxCooldown time.Duration
	// Now is the clock; nil means time.Now. Tests compress days with it.
	Now func() time.Time
}

// CircuitState is the state of one host's circuit.
type CircuitState string

// The circuit states. Closed lets requests through; Open holds them back until the
// cooldown ends; HalfOpen lets one probe through and holds the rest until it answers;
// Unavailable (failures on UnavailableAfterDays distinct days) drops deliveries until the
// host is heard from again.
const (
	// Closed lets requests through.
	Closed CircuitState = "closed"
	// Open holds requests back until the cooldown ends.
	Open CircuitState = "open"
	// HalfOpen lets one probe through; the other rows wait for its answer.
	HalfOpen CircuitState = "half-open"
	// Unavailable drops deliveries until the host is heard from again.
	Unavailable CircuitState = "unavailable"
)

// Decision is the breaker's answer for one request to a host.
type Decision struct {
	// State is the host's state when asked.
	State CircuitState
	// Allow is true when the request may be sent (closed, or this is the probe).
	Allow bool
	// Probe is true when this request is the half-open probe; the caller must report
	// its result with Success or Failure.
	Probe bool
	// Until is when an open circuit lets a probe through.
	Until time.Time
	// Wait, when not nil, is closed when the probe in flight has answered; the caller
	// waits for it and asks again.
	Wait <-chan struct{}
}

// hostCircuit is one host's breaker state.
type hostCircuit struct {
	failures    int       // consecutive failures since the last success
	trips       int       // openings since the last success
	openUntil   time.Time // zero when closed
	probe       chan struct{}
	unavailable bool
	// clean means the store is known to hold no failures for the host, so a success
	// need not be written.
	clean bool
}

// Breaker is a per-host circuit breaker, shared by all deliveries of one executor. It
// protects failing peers (and our workers) from a request per queued row: after
// Threshold consecutive failures the host gets one probe per cooldown, and queued rows
// wait for the probe instead of each timing out. It is safe for concurrent use.
type Breaker struct {
	cfg   BreakerConfig
	mu    sync.Mutex
	hosts map[string]*hostCircuit
}

// NewBreaker returns a Breaker with cfg's zero fields set to the defaults.
func NewBreaker(cfg BreakerConfig) *Breaker {
	if cfg.Threshold <= 0 {
		cfg.Threshold = DefaultBreakerThreshold
	}
	if cfg.Cooldown <= 0 {
		cfg.Cooldown = DefaultBreakerCooldown
	}
	if cfg.MaxCooldown < cfg.Cooldown {
		cfg.MaxCooldown = max(DefaultBreakerMaxCooldown, cfg.Cooldown)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Breaker{cfg: cfg, hosts: map[string]*hostCircuit{}}
}

func (b *Breaker) get(host string) *hostCircuit {
	h, ok := b.hosts[host]
	if !ok {
		h = &hostCircuit{}
		b.hosts[host] = h
	}
	return h
}

func (b *Breaker) stateLocked(h *hostCircuit, now time.Time) CircuitState {
	switch {
	case h.unavailable:
		return Unavailable
	case h.openUntil.IsZero():
		return Closed
	case now.Before(h.openUntil):
		return Open
	}
	return HalfOpen
}

// Allow asks whether a request to host may be sent now.
func (b *Breaker) Allow(host string) Decision {
	now := b.cfg.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	h := b.get(host)
	st := b.stateLocked(h, now)
	switch st {
	case Closed:
		return Decision{State: st, Allow: true}
	case Unavailable:
		return Decision{State: st}
	case Open:
		return Decision{State: st, Until: h.openUntil}
	}
	if h.probe != nil {
		return Decision{State: st, Until: h.openUntil, Wait: h.probe}
	}
	h.probe = make(chan struct{})
	return Decision{State: st, Allow: true, Probe: true}
}

// endProbe wakes the rows waiting for the probe, if one was in flight.
func (h *hostCircuit) endProbe() {
	if h.probe != nil {
		close(h.probe)
		h.probe = nil
	}
}

// Success records that host answered in a way that shows it is alive. It closes the
// circuit and reports whether the store must be told (RecordHostSuccess): false when the
// store is already known to hold no failures for the host, which keeps a fan-out to
// healthy hosts at one write per host per process.
func (b *Breaker) Success(host string) (record bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	h := b.get(host)
	record = !h.clean || h.failures > 0 || h.unavailable
	h.failures, h.trips, h.openUntil, h.unavailable, h.clean = 0, 0, time.Time{}, false, true
	h.endProbe()
	return record
}

// Failure records a failed request to host. consecutive is the count the store returned
// (it merges failures seen by other workers), 0 when unknown. It opens the circuit once
// the count reaches the threshold, and re-opens it for twice as long when a probe fails.
func (b *Breaker) Failure(host string, consecutive int) {
	now := b.cfg.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	h := b.get(host)
	h.clean = false
	h.failures = max(h.failures+1, consecutive)
	wasProbe := h.probe != nil
	h.endProbe()
	if h.failures < b.cfg.Threshold && !wasProbe {
		return
	}
	if !h.openUntil.IsZero() && now.Before(h.openUntil) {
		return // already open: a late answer from before it opened
	}
	h.trips++
	cool := b.cfg.Cooldown << min(h.trips-1, 30)
	if cool > b.cfg.MaxCooldown || cool <= 0 {
		cool = b.cfg.MaxCooldown
	}
	h.openUntil = now.Add(cool)
}

// Abandon ends a probe whose request was not made or not answered (shutdown, local
// error) without counting it either way, so that waiting rows can ask again.
func (b *Breaker) Abandon(host string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if h, ok := b.hosts[host]; ok {
		h.endProbe()
	}
}

// SetUnavailable marks host unavailable (or not), from the store's day count.
func (b *Breaker) SetUnavailable(host string, unavailable bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	h := b.get(host)
	h.unavailable = unavailable
	if unavailable {
		h.clean = false
	}
}

// SyncUnavailable replaces the set of unavailable hosts with the store's list, so a
// host another worker marked, or that was heard from through the inbox, is seen here.
func (b *Breaker) SyncUnavailable(hosts []string) {
	set := make(map[string]bool, len(hosts))
	for _, h := range hosts {
		set[h] = true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for name, h := range b.hosts {
		if h.unavailable && !set[name] {
			h.unavailable, h.failures, h.trips, h.openUntil = false, 0, 0, time.Time{}
			h.endProbe()
		}
	}
	for name := range set {
		b.get(name).unavailable = true
	}
}

// State returns host's circuit state now.
func (b *Breaker) State(host string) CircuitState {
	now := b.cfg.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	h, ok := b.hosts[host]
	if !ok {
		return Closed
	}
	return b.stateLocked(h, now)
}

// HostCircuit is one host's circuit as reported by Snapshot.
type HostCircuit struct {
	// Host is the host[:port] the circuit guards.
	Host string
	// State is open, half-open or unavailable (Snapshot omits closed circuits).
	State CircuitState
	// ConsecutiveFailures counts failures since the host's last success.
	ConsecutiveFailures int
	// OpenUntil is when the next probe may go.
	OpenUntil time.Time
}

// Snapshot lists the hosts whose circuit is not closed, sorted by host, for metrics.
func (b *Breaker) Snapshot() []HostCircuit {
	now := b.cfg.Now()
	b.mu.Lock()
	var out []HostCircuit
	for name, h := range b.hosts {
		if st := b.stateLocked(h, now); st != Closed {
			out = append(out, HostCircuit{Host: name, State: st, ConsecutiveFailures: h.failures, OpenUntil: h.openUntil})
		}
	}
	b.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Host < out[j].Host })
	return out
}
