package delivery

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fedforge/fedforge/internal/store"
)

// holdBack settles a row the breaker did not let through, without a request.
func (e *Executor) holdBack(ctx context.Context, d store.Delivery, dec Decision) {
	e.heldBack.Add(1)
	e.cfg.Metrics.heldBack(dec.State)
	if dec.State == Unavailable {
		e.finish(ctx, d, fmt.Sprintf("%s is unavailable (failures on %d distinct days)", d.Host, e.cfg.UnavailableAfterDays), Drop)
		return
	}
	now := e.now()
	reason := fmt.Sprintf("circuit open for %s until %s", d.Host, dec.Until.UTC().Format(time.RFC3339))
	if last := rootError(d.LastError); last != "" {
		reason += lastErrorSep + last
	}
	if act, err := e.acts.get(ctx, e.cfg.Queue, d.ActivityID); err == nil && e.cfg.Retry.Exhausted(d.Attempt, act.Published, now) {
		e.finish(ctx, d, truncate("retry window over: "+reason), Drop)
		return
	}
	e.retry(ctx, d, dec.Until, truncate(reason))
}

// lastErrorSep joins a row's new last_error to the error of its last real attempt.
const lastErrorSep = "; last error: "

// rootError is the error of the last real attempt inside a last_error that rows held
// back or released have prefixed, so prefixes do not pile up.
func rootError(s string) string {
	if i := strings.LastIndex(s, lastErrorSep); i >= 0 {
		return s[i+len(lastErrorSep):]
	}
	return s
}

// localFailure retries a row that failed on our side (store, keys) soon, without
// counting it against the host.
func (e *Executor) localFailure(ctx context.Context, d store.Delivery, err error) {
	e.log.Error(err, "delivery could not be attempted", "delivery", d.ID, "host", d.Host)
	e.retry(ctx, d, e.now().Add(localRetryDelay), truncate(err.Error()))
}

// retry releases the row until next.
func (e *Executor) retry(ctx context.Context, d store.Delivery, next time.Time, reason string) {
	e.retried.Add(1)
	e.cfg.Metrics.outcome(Retry)
	if err := e.cfg.Queue.MarkFailed(ctx, d.ID, d.LeaseOwner, next, reason); err != nil {
		e.reportError(err, d, "releasing delivery for a retry")
		return
	}
	e.log.V(1).Info("delivery will be retried", "delivery", d.ID, "host", d.Host, "attempt", d.Attempt, "next", next, "reason", reason)
}

// releaseNow gives a leased row back at once, for rows this worker cannot send now.
// It uses a context of its own, because it mostly runs when ctx has ended.
func (e *Executor) releaseNow(d store.Delivery, reason string) {
	e.released.Add(1)
	if last := rootError(d.LastError); last != "" {
		reason += lastErrorSep + last
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.cfg.Queue.MarkFailed(ctx, d.ID, d.LeaseOwner, e.now().Add(time.Second), truncate(reason)); err != nil {
		e.reportError(err, d, "releasing delivery")
	}
}

// finish dead-letters a row, and tells OnGone about a 410.
func (e *Executor) finish(ctx context.Context, d store.Delivery, reason string, a Action) {
	e.givenUp.Add(1)
	e.cfg.Metrics.outcome(a)
	if err := e.cfg.Queue.GiveUp(ctx, d.ID, d.LeaseOwner, e.now(), truncate(reason)); err != nil {
		e.reportError(err, d, "giving up delivery")
		return
	}
	e.log.Info("delivery given up", "delivery", d.ID, "activity", d.ActivityID, "host", d.Host, "reason", reason)
	if a == Gone {
		e.gone.Add(1)
		if e.cfg.OnGone != nil {
			e.cfg.OnGone(ctx, d)
		}
	}
}

// reportError logs a failed report; a lost lease is expected after a long stall.
func (e *Executor) reportError(err error, d store.Delivery, what string) {
	if errors.Is(err, store.ErrLeaseLost) {
		e.log.V(1).Info(what+": lease lost", "delivery", d.ID, "host", d.Host)
		return
	}
	e.log.Error(err, what, "delivery", d.ID, "host", d.Host)
}
