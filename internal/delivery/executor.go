package delivery

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/sync/semaphore"

	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/store"
)

// Keys hands out the signer of a local actor. The server implements it from the key
// Secrets in its informer cache; a delivery Job from the Secrets mounted in its pod
// (DirKeys). Implementations cache parsed keys: it is called for every row.
type Keys interface {
	// Signer returns the signer (key and keyId) of the local actor actorID.
	Signer(ctx context.Context, actorID string) (*activitypub.Signer, error)
}

// Defaults of Config.
const (
	// DefaultConcurrency bounds POSTs in flight overall: enough to hide network latency,
	// few enough that signing on a small node does not starve the answers' reads.
	DefaultConcurrency = 32
	// DefaultPerHost bounds POSTs in flight to one host: the outbound client keeps 4
	// idle connections per host, so every request can reuse one.
	DefaultPerHost = 4
	// DefaultLease is how long a leased row is ours before it comes back.
	DefaultLease = 5 * time.Minute
	// DefaultPollInterval is how often Run looks for due rows without a Kick.
	DefaultPollInterval = 5 * time.Second
	// DefaultRetention is how long finished rows are kept to refuse re-sending.
	DefaultRetention = 30 * 24 * time.Hour
	// localRetryDelay is the wait after a failure that is ours (store, keys), not the host's.
	localRetryDelay = time.Minute
)

// Config assembles an Executor. Queue, Client and Keys are required.
type Config struct {
	// Queue is where rows are leased and reported: the store, or a RemoteQueue in a Job.
	Queue Queue
	// Client is the one outbound client; every POST goes through it (IP checks,
	// timeouts, signing, keep-alive connections shared across rows).
	Client *activitypub.Client
	// Keys returns the signer of the actor a row belongs to.
	Keys Keys
	// Owner names this worker in leases; default hostname plus a random suffix.
	Owner string
	// Concurrency bounds POSTs in flight overall (default 32).
	Concurrency int
	// PerHost bounds POSTs in flight to one host (default 4).
	PerHost int
	// Batch is the most rows leased at once (default Concurrency).
	Batch int
	// Lease is how long a leased row is ours before it comes back (default 5 min). It
	// must cover a batch waiting for its host slots plus RequestTimeout.
	Lease time.Duration
	// RequestTimeout is the client's total timeout (default 30 s); a row whose lease
	// ends sooner than that is released instead of sent, so it cannot be sent twice.
	RequestTimeout time.Duration
	// Retry is the retry schedule (default DefaultRetryPolicy).
	Retry RetryPolicy
	// Breaker is the per-host circuit breaker; nil makes one with Now.
	Breaker *Breaker
	// UnavailableAfterDays marks a host unavailable after failures on that many
	// distinct days (default 7).
	UnavailableAfterDays int
	// PollInterval is how often Run looks for due rows when not kicked (default 5 s).
	PollInterval time.Duration
	// Retention is how long Run keeps finished rows (default 30 days; negative keeps
	// them forever). A delivered row is what stops an inbox from getting an activity
	// twice, so it must outlive any re-enqueue of the same activity.
	Retention time.Duration
	// Now is the clock for leases and schedules; nil means time.Now. Signatures use
	// the signer's own clock.
	Now func() time.Time
	// OnGone is told of every 410 Gone, so the caller can remove the Subscriptions
	// whose inbox it was; it runs on the delivery goroutine and should be quick.
	OnGone func(ctx context.Context, d store.Delivery)
	// Metrics, when set, counts attempts and outcomes.
	Metrics *Metrics
	// Log receives structured logs; default discards.
	Log logr.Logger
}

// Counts are cumulative outcomes of an Executor, for logs and tests.
type Counts struct {
	// Leased rows, whatever became of them.
	Leased int64
	// Delivered rows: the inbox answered 2xx.
	Delivered int64
	// Retried rows were released for a later attempt (failures and held-back rows).
	Retried int64
	// GivenUp rows were dead-lettered (permanent status, 410, exhausted, unavailable).
	GivenUp int64
	// Gone rows got a 410 (also counted in GivenUp).
	Gone int64
	// HeldBack rows were not attempted because the host's circuit was open or the
	// host unavailable.
	HeldBack int64
	// Released rows were given back unattempted (shutdown, lease too short).
	Released int64
}

// Executor leases due deliveries and sends them. It is the one delivery code path: the
// server runs it in process (Run, Kick after a publish) and a delivery Job runs RunOnce
// until nothing is due. It is safe for concurrent use.
type Executor struct {
	cfg     Config
	now     func() time.Time
	breaker *Breaker
	log     logr.Logger
	global  chan struct{}
	kick    chan struct{}
	acts    *activityCache

	hostMu sync.Mutex
	hosts  map[string]*hostSlot

	syncMu     sync.Mutex
	lastSync   time.Time
	lastPruned time.Time

	leased, delivered, retried, givenUp, gone, heldBack, released atomic.Int64

	// marks group-commits 2xx answers when the queue can (delivered.go); nil: one
	// MarkDelivered per answer.
	marks *deliveredGroup
}

// NewExecutor checks cfg and fills its defaults.
func NewExecutor(cfg Config) (*Executor, error) {
	if cfg.Queue == nil || cfg.Client == nil || cfg.Keys == nil {
		return nil, errors.New("delivery: executor needs a queue, a client and keys")
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.PerHost <= 0 {
		cfg.PerHost = DefaultPerHost
	}
	if cfg.Batch <= 0 {
		cfg.Batch = cfg.Concurrency
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 30 * time.Second
	}
	if cfg.Lease <= 0 {
		cfg.Lease = DefaultLease
	}
	if cfg.Lease < 3*cfg.RequestTimeout {
		return nil, fmt.Errorf("delivery: lease %s must be at least 3 request timeouts (%s)", cfg.Lease, 3*cfg.RequestTimeout)
	}
	if cfg.UnavailableAfterDays <= 0 {
		cfg.UnavailableAfterDays = DefaultUnavailableAfterDays
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.Retention == 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Owner == "" {
		cfg.Owner = defaultOwner()
	}
	cfg.Retry = cfg.Retry.withDefaults()
	if cfg.Log.GetSink() == nil {
		cfg.Log = logr.Discard()
	}
	b := cfg.Breaker
	if b == nil {
		b = NewBreaker(BreakerConfig{Now: cfg.Now})
	}
	cfg.Metrics.attach(b, cfg.Now)
	var marks *deliveredGroup
	if bm, ok := cfg.Queue.(batchMarker); ok {
		marks = newDeliveredGroup(bm, markLinger, max(1, cfg.Concurrency-1))
	}
	return &Executor{
		cfg: cfg, now: cfg.Now, breaker: b, log: cfg.Log, marks: marks,
		global: make(chan struct{}, cfg.Concurrency),
		kick:   make(chan struct{}, 1),
		acts:   newActivityCache(32),
		hosts:  map[string]*hostSlot{},
	}, nil
}

// defaultOwner is the pod (host) name with a random suffix, unique per process.
func defaultOwner() string {
	h, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return h + "-" + hex.EncodeToString(b)
}

// Owner is the name this executor leases rows under.
func (e *Executor) Owner() string { return e.cfg.Owner }

// Breaker is the executor's circuit breaker (for metrics and status).
func (e *Executor) Breaker() *Breaker { return e.breaker }

// Counts returns cumulative outcomes since the executor was made.
func (e *Executor) Counts() Counts {
	return Counts{
		Leased: e.leased.Load(), Delivered: e.delivered.Load(), Retried: e.retried.Load(),
		GivenUp: e.givenUp.Load(), Gone: e.gone.Load(), HeldBack: e.heldBack.Load(), Released: e.released.Load(),
	}
}

// Kick wakes Run now, after a publish, instead of at the next poll.
func (e *Executor) Kick() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

// Run delivers until ctx ends: a RunOnce at every Kick and every PollInterval, and a
// prune of finished rows every hour when the queue supports it.
func (e *Executor) Run(ctx context.Context) error {
	wait := e.cfg.PollInterval
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-e.kick:
		case <-timer.C:
		}
		if _, err := e.RunOnce(ctx); err != nil && ctx.Err() == nil {
			e.log.Error(err, "delivery round failed")
			wait = min(2*wait, time.Minute)
		} else {
			wait = e.cfg.PollInterval
		}
		e.maybePrune(ctx)
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
	}
}

// maybePrune deletes finished rows older than Retention, at most once an hour.
func (e *Executor) maybePrune(ctx context.Context) {
	p, ok := e.cfg.Queue.(Pruner)
	if !ok || e.cfg.Retention < 0 {
		return
	}
	now := e.now()
	e.syncMu.Lock()
	due := now.Sub(e.lastPruned) >= time.Hour
	if due {
		e.lastPruned = now
	}
	e.syncMu.Unlock()
	if !due {
		return
	}
	if n, err := p.PruneDeliveries(ctx, now.Add(-e.cfg.Retention)); err != nil {
		e.log.Error(err, "pruning finished deliveries")
	} else if n > 0 {
		e.log.V(1).Info("pruned finished deliveries", "rows", n)
	}
}

// syncUnavailable refreshes the breaker's unavailable hosts from the queue, at most
// once a minute.
func (e *Executor) syncUnavailable(ctx context.Context) error {
	now := e.now()
	e.syncMu.Lock()
	due := e.lastSync.IsZero() || now.Sub(e.lastSync) >= time.Minute || now.Before(e.lastSync)
	e.syncMu.Unlock()
	if !due {
		return nil
	}
	hs, err := e.cfg.Queue.ListUnavailableHosts(ctx)
	if err != nil {
		return fmt.Errorf("delivery: listing unavailable hosts: %w", err)
	}
	names := make([]string, len(hs))
	for i, h := range hs {
		names[i] = h.Host
	}
	e.breaker.SyncUnavailable(names)
	e.syncMu.Lock()
	e.lastSync = now
	e.syncMu.Unlock()
	return nil
}

// RunOnce delivers everything due now and returns how many rows it leased. It leases
// in batches while earlier rows are in flight, so a slow host does not stall the
// others beyond its own slots, and returns when a lease comes back empty and every
// leased row has been reported.
func (e *Executor) RunOnce(ctx context.Context) (int, error) {
	if err := e.syncUnavailable(ctx); err != nil {
		return 0, err
	}
	batch := int64(e.cfg.Batch)
	window := semaphore.NewWeighted(2 * batch) // leased rows not yet reported
	var wg sync.WaitGroup
	defer wg.Wait()
	// Each leased row is handled by a goroutine of its own, as many as the window holds
	// rows; one that has finished its row takes the next before another is started. A
	// fresh goroutine grows its stack while it signs and sends (copying it each time),
	// which the profile showed (copystack); the fan-out's median ratio did not move
	// measurably (docs/benchmarks.md, fifth session).
	work := make(chan store.Delivery)
	defer close(work)
	dispatch := func(d store.Delivery) {
		select {
		case work <- d:
			return
		default:
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ok := true; ok; d, ok = <-work {
				e.handle(ctx, d)
				window.Release(1)
			}
		}()
	}
	total := 0
	for ctx.Err() == nil {
		if err := window.Acquire(ctx, batch); err != nil {
			break
		}
		rows, err := e.cfg.Queue.LeaseDeliveries(ctx, store.LeaseRequest{
			Now: e.now(), Limit: int(batch), Lease: e.cfg.Lease, Owner: e.cfg.Owner,
		})
		if err != nil {
			window.Release(batch)
			if ctx.Err() != nil {
				break
			}
			return total, fmt.Errorf("delivery: leasing as %s: %w", e.cfg.Owner, err)
		}
		window.Release(batch - int64(len(rows)))
		if len(rows) == 0 {
			break
		}
		total += len(rows)
		e.leased.Add(int64(len(rows)))
		for _, d := range rows {
			dispatch(d)
		}
	}
	return total, nil
}

// handle takes one leased row to its end: delivered, released for a retry, or given up.
func (e *Executor) handle(ctx context.Context, d store.Delivery) {
	releaseHost, err := e.acquireHost(ctx, d.Host)
	if err != nil {
		e.releaseNow(d, "not attempted: worker stopped")
		return
	}
	defer releaseHost()
	var dec Decision
	for {
		dec = e.breaker.Allow(d.Host)
		if dec.Wait == nil {
			break
		}
		select {
		case <-dec.Wait:
		case <-ctx.Done():
			e.releaseNow(d, "not attempted: worker stopped")
			return
		}
	}
	if !dec.Allow {
		e.holdBack(ctx, d, dec)
		return
	}
	probeOpen := dec.Probe
	defer func() {
		if probeOpen {
			e.breaker.Abandon(d.Host)
		}
	}()
	select {
	case e.global <- struct{}{}:
		defer func() { <-e.global }()
	case <-ctx.Done():
		e.releaseNow(d, "not attempted: worker stopped")
		return
	}
	// Counted as a worker whose 2xx may join the pending round of marks, until it marks
	// (markDelivered) or settles otherwise (the deferred end), so the round's writer
	// stops waiting once no counted worker is left (delivered.go).
	marking := false
	if g := e.marks; g != nil {
		g.begin()
		defer func() {
			if !marking {
				g.end()
			}
		}()
	}
	if e.now().Add(e.cfg.RequestTimeout).After(d.LeaseExpires) {
		// The row waited too long for a slot: sending now could outlive the lease and
		// let another worker send it too.
		e.releaseNow(d, "not attempted: lease ran short")
		return
	}
	act, err := e.acts.get(ctx, e.cfg.Queue, d.ActivityID)
	if errors.Is(err, store.ErrNotFound) {
		e.finish(ctx, d, "activity no longer exists", Drop)
		return
	}
	if err != nil {
		e.localFailure(ctx, d, fmt.Errorf("loading activity %s: %w", d.ActivityID, err))
		return
	}
	signer, err := e.cfg.Keys.Signer(ctx, d.ActorID)
	if err != nil {
		e.localFailure(ctx, d, fmt.Errorf("no signer for %s: %w", d.ActorID, err))
		return
	}
	resp, err := e.cfg.Client.Deliver(ctx, d.Inbox, act.Raw, signer)
	if err != nil && ctx.Err() != nil {
		// Shutting down: whether the peer got it is unknown; it comes back (at least once).
		e.releaseNow(d, "interrupted: worker stopped")
		return
	}
	// From here on the outcome is known and must be written even if ctx ends now.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	now := e.now()
	o := Classify(d.Host, resp, err, now)
	e.cfg.Metrics.attempt(o)
	hostUp := e.recordHost(ctx, d.Host, o, now, e.marks != nil)
	probeOpen = probeOpen && !o.HostUp && !o.HostDown
	switch o.Action {
	case Delivered:
		marking = e.marks != nil
		e.markDelivered(ctx, d, now, hostUp, marking)
	case Retry:
		if e.cfg.Retry.Exhausted(d.Attempt, act.Published, now) {
			e.finish(ctx, d, fmt.Sprintf("retries exhausted after %d attempts: %s", d.Attempt, o.Reason), Drop)
			return
		}
		e.retry(ctx, d, e.cfg.Retry.Next(d.Attempt, now, o.RetryAfter), o.Reason)
	case Drop, Gone:
		e.finish(ctx, d, o.Reason, o.Action)
	}
}
