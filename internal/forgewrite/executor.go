package forgewrite

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/go-logr/logr"

	"github.com/fedforge/fedforge/internal/forge"
	"github.com/fedforge/fedforge/internal/store"
)

// Defaults of Config.
const (
	// DefaultBaseDelay is the wait after the first failure; it doubles per attempt.
	DefaultBaseDelay = 5 * time.Second
	// DefaultMaxDelay caps one wait: a forge back from an outage is written to within
	// this long.
	DefaultMaxDelay = 15 * time.Minute
	// DefaultMaxAge is how long a write is retried before it is given up: a week covers
	// a forge's longest planned outage; a write older than that is news no one waits for.
	DefaultMaxAge = 7 * 24 * time.Hour
	// DefaultLease is how long a leased row is ours; it covers CallTimeout twice.
	DefaultLease = 5 * time.Minute
	// DefaultCallTimeout bounds one forge write (its recovery lookup included).
	DefaultCallTimeout = time.Minute
	// DefaultBatch is the most rows leased and written at once.
	DefaultBatch = 8
	// DefaultPollInterval is how often Run looks for due rows without a Kick.
	DefaultPollInterval = 2 * time.Second
)

// Target is where a row is written: the actor's forge writer and project.
type Target struct {
	Writer forge.Writer
	Repo   forge.Repository
}

// Config assembles an Executor. Store and Target are required.
type Config struct {
	// Store holds the queue.
	Store store.Tickets
	// Target returns the forge of the local actor a row belongs to, read when the row
	// runs (a fixed spec.forge applies to writes already queued). An error wrapped with
	// Permanent gives the row up (the actor takes no tickets any more).
	Target func(ctx context.Context, actorID string) (Target, error)
	// Prepare, when set, completes op before it is written (the comment id of an edit
	// whose comment's own write was queued after it); an error retries the row later.
	Prepare func(ctx context.Context, w store.ForgeWrite, op *Op) error
	// Done runs after the forge answered and the answer is recorded: the follow-up
	// (Accept, the comment map). An error retries Done alone, never the write.
	Done func(ctx context.Context, w store.ForgeWrite, op Op, ref store.ForgeRef) error
	// Dead is told of a row given up, with the reason (a Reject to the offerer, an Event).
	Dead func(ctx context.Context, w store.ForgeWrite, op Op, reason string)
	// Git runs the kinds that need git besides the forge's API (KindMergeRequest,
	// KindMergeRequestUpdate: a mirror with internal/gitsync, then the pull request). It
	// finds a pull request whose answer was lost itself (w.Attempt > 1), and says which of
	// its errors are for good with Permanent; the others are retried. Without it those
	// kinds are given up.
	Git func(ctx context.Context, w store.ForgeWrite, op Op) (forge.Ref, error)
	// Owner names this worker in leases; default host name and a random suffix.
	Owner                              string
	BaseDelay, MaxDelay, MaxAge, Lease time.Duration
	CallTimeout, PollInterval          time.Duration
	Batch                              int
	Now                                func() time.Time
	Log                                logr.Logger
}

// Executor runs the forge-write queue. Every replica may run one: leases keep a row on
// one worker, and a row whose forge answer is recorded is never written again.
type Executor struct {
	cfg  Config
	kick chan struct{}
}

// New checks cfg and fills its defaults.
func New(cfg Config) (*Executor, error) {
	if cfg.Store == nil || cfg.Target == nil {
		return nil, errors.New("forgewrite: an executor needs a store and a target")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.BaseDelay, DefaultBaseDelay)
	def(&cfg.MaxDelay, DefaultMaxDelay)
	def(&cfg.MaxAge, DefaultMaxAge)
	def(&cfg.Lease, DefaultLease)
	def(&cfg.CallTimeout, DefaultCallTimeout)
	def(&cfg.PollInterval, DefaultPollInterval)
	if cfg.Lease < 2*cfg.CallTimeout {
		return nil, fmt.Errorf("forgewrite: lease %s must cover two call timeouts (%s)", cfg.Lease, 2*cfg.CallTimeout)
	}
	if cfg.Batch <= 0 {
		cfg.Batch = DefaultBatch
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Owner == "" {
		host, _ := os.Hostname()
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		cfg.Owner = host + "-" + hex.EncodeToString(b)
	}
	if cfg.Log.GetSink() == nil {
		cfg.Log = logr.Discard()
	}
	return &Executor{cfg: cfg, kick: make(chan struct{}, 1)}, nil
}

// Kick makes Run look for due rows now (after a write was queued).
func (e *Executor) Kick() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

// Run works the queue until ctx ends.
func (e *Executor) Run(ctx context.Context) error {
	t := time.NewTicker(e.cfg.PollInterval)
	defer t.Stop()
	for {
		for {
			n, err := e.RunOnce(ctx)
			if err != nil && ctx.Err() == nil {
				e.cfg.Log.Info("leasing forge writes failed", "error", err.Error())
			}
			if n < e.cfg.Batch || err != nil {
				break
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-e.kick:
		case <-t.C:
		}
	}
}

// RunOnce leases one batch of due rows and writes them; it returns how many it leased.
func (e *Executor) RunOnce(ctx context.Context) (int, error) {
	rows, err := e.cfg.Store.LeaseForgeWrites(ctx, store.LeaseRequest{Now: e.cfg.Now(), Limit: e.cfg.Batch, Lease: e.cfg.Lease, Owner: e.cfg.Owner})
	if err != nil {
		return 0, err
	}
	var wg sync.WaitGroup
	for _, w := range rows {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.run(ctx, w)
		}()
	}
	wg.Wait()
	return len(rows), nil
}

// run takes one leased row to its end or to its next attempt.
func (e *Executor) run(ctx context.Context, w store.ForgeWrite) {
	log := e.cfg.Log.WithValues("key", w.Key, "kind", w.Kind, "actor", w.ActorID, "attempt", w.Attempt)
	op, err := Decode(w)
	if err != nil {
		e.giveUp(ctx, w, op, err.Error(), log)
		return
	}
	ref := w.Ref
	if !w.HasRef {
		ref, err = e.write(ctx, w, &op)
		if err != nil {
			if permanent(err) || e.cfg.Now().Sub(w.Created) > e.cfg.MaxAge {
				e.giveUp(ctx, w, op, err.Error(), log)
				return
			}
			e.retry(ctx, w, err, log)
			return
		}
		if err := e.cfg.Store.RecordForgeRef(ctx, w.ID, e.cfg.Owner, ref); err != nil {
			// Lease lost or the store failed: the row comes back, and FindByKey finds
			// what was written, so nothing is written twice where the forge can say so.
			log.Info("recording a forge answer failed", "error", err.Error())
			return
		}
	}
	if e.cfg.Done != nil {
		if err := e.cfg.Done(ctx, w, op, ref); err != nil {
			e.retry(ctx, w, fmt.Errorf("after the forge write: %w", err), log)
			return
		}
	}
	if err := e.cfg.Store.FinishForgeWrite(ctx, w.ID, e.cfg.Owner, e.cfg.Now()); err != nil {
		log.Info("finishing a forge write failed; its follow-up runs again", "error", err.Error())
		return
	}
	log.V(1).Info("forge write done", "number", ref.Number, "id", ref.ID)
}

// write makes the forge call of one row. A retried issue or comment is first looked for
// by its key, so that an answer lost in a crash or a timeout is recovered, not doubled.
func (e *Executor) write(ctx context.Context, w store.ForgeWrite, op *Op) (store.ForgeRef, error) {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.CallTimeout)
	defer cancel()
	if e.cfg.Prepare != nil {
		if err := e.cfg.Prepare(ctx, w, op); err != nil {
			return store.ForgeRef{}, err
		}
	}
	if op.Kind == KindMergeRequest || op.Kind == KindMergeRequestUpdate {
		if e.cfg.Git == nil {
			return store.ForgeRef{}, Permanent(fmt.Errorf("%s writes are not run here", op.Kind))
		}
		ref, err := e.cfg.Git(ctx, w, *op)
		if err != nil {
			return store.ForgeRef{}, err
		}
		return store.ForgeRef{Number: ref.Number, ID: ref.ID, URL: ref.URL}, nil
	}
	t, err := e.cfg.Target(ctx, w.ActorID)
	if err != nil {
		return store.ForgeRef{}, err
	}
	key := forge.IdempotencyKey(w.Key)
	if kf, ok := t.Writer.(forge.KeyFinder); ok && w.Attempt > 1 && (op.Kind == KindIssue || op.Kind == KindComment) {
		number := int64(0)
		if op.Kind == KindComment {
			number = op.Number
		}
		if ref, found, err := kf.FindByKey(ctx, t.Repo, number, key); err != nil {
			return store.ForgeRef{}, err
		} else if found {
			return store.ForgeRef{Number: ref.Number, ID: ref.ID, URL: ref.URL}, nil
		}
	}
	var ref forge.Ref
	switch op.Kind {
	case KindIssue:
		tk := *op.Ticket
		tk.Key = key
		ref, err = t.Writer.CreateIssue(ctx, t.Repo, tk)
	case KindComment:
		c := *op.Comment
		c.Key = key
		ref, err = t.Writer.Comment(ctx, t.Repo, op.Number, c)
	case KindEditComment:
		c := *op.Comment
		c.Key = key
		err = t.Writer.EditComment(ctx, t.Repo, op.CommentID, c)
		ref = forge.Ref{Number: op.Number, ID: op.CommentID}
	case KindDeleteComment:
		err = t.Writer.DeleteComment(ctx, t.Repo, op.CommentID)
		ref = forge.Ref{Number: op.Number, ID: op.CommentID}
	case KindClose:
		err = t.Writer.CloseIssue(ctx, t.Repo, op.Number, key)
		ref = forge.Ref{Number: op.Number}
	case KindReopen:
		ro, ok := t.Writer.(forge.PullReopener)
		if !ok {
			return store.ForgeRef{}, Permanent(fmt.Errorf("the %s writer cannot reopen pull requests", t.Writer.Type()))
		}
		err = ro.ReopenPull(ctx, t.Repo, op.Number)
		ref = forge.Ref{Number: op.Number}
	default:
		err = Permanent(fmt.Errorf("unknown kind %q", op.Kind))
	}
	if err != nil {
		// A writer reports what the forge said (or that it did not answer) as an
		// APIError; anything else is the writer refusing the write itself (no title, a
		// project that is not owner/name), which no retry changes.
		if _, ok := forge.AsAPIError(err); !ok && ctx.Err() == nil {
			err = Permanent(err)
		}
		return store.ForgeRef{}, err
	}
	return store.ForgeRef{Number: ref.Number, ID: ref.ID, URL: ref.URL}, nil
}

// backoff is the wait after failed attempt n: BaseDelay·2^(n-1) capped at MaxDelay, with
// ±20 % jitter so that the writes held back by an outage do not all return at once.
func (e *Executor) backoff(attempt int) time.Duration {
	d := e.cfg.BaseDelay
	for i := 1; i < attempt && d < e.cfg.MaxDelay; i++ {
		d *= 2
	}
	d = min(d, e.cfg.MaxDelay)
	return time.Duration(float64(d) * (0.8 + 0.4*mrand.Float64()))
}

func (e *Executor) retry(ctx context.Context, w store.ForgeWrite, cause error, log logr.Logger) {
	next := e.cfg.Now().Add(e.backoff(w.Attempt))
	log.Info("forge write failed; retrying", "next", next.UTC().Format(time.RFC3339), "error", cause.Error())
	if err := e.cfg.Store.RetryForgeWrite(ctx, w.ID, e.cfg.Owner, next, truncate(cause.Error())); err != nil {
		log.Info("releasing a forge write failed; it returns when its lease ends", "error", err.Error())
	}
}

func (e *Executor) giveUp(ctx context.Context, w store.ForgeWrite, op Op, reason string, log logr.Logger) {
	log.Info("forge write given up", "reason", reason)
	if err := e.cfg.Store.GiveUpForgeWrite(ctx, w.ID, e.cfg.Owner, e.cfg.Now(), truncate(reason)); err != nil {
		log.Info("giving up a forge write failed; it returns when its lease ends", "error", err.Error())
		return
	}
	if e.cfg.Dead != nil {
		e.cfg.Dead(ctx, w, op, reason)
	}
}

func truncate(s string) string {
	if len(s) > 1000 {
		return s[:1000]
	}
	return s
}
