package delivery

import (
	"context"
	"fmt"
	"time"
)

// hostSlot bounds the requests in flight to one host.
type hostSlot struct {
	ch   chan struct{}
	refs int
}

// acquireHost takes one of host's slots; the returned func gives it back.
func (e *Executor) acquireHost(ctx context.Context, host string) (func(), error) {
	e.hostMu.Lock()
	s, ok := e.hosts[host]
	if !ok {
		s = &hostSlot{ch: make(chan struct{}, e.cfg.PerHost)}
		e.hosts[host] = s
	}
	s.refs++
	e.hostMu.Unlock()
	done := func() {
		e.hostMu.Lock()
		if s.refs--; s.refs == 0 {
			delete(e.hosts, host)
		}
		e.hostMu.Unlock()
	}
	select {
	case s.ch <- struct{}{}:
		return func() { <-s.ch; done() }, nil
	case <-ctx.Done():
		done()
		return nil, ctx.Err()
	}
}

// recordHost feeds the outcome to the breaker and the store's host state. A success the
// store must hear of is left to the caller when deferSuccess is set and the outcome is a
// 2xx (pending is then true): markDelivered writes it with the row, in the group commit.
func (e *Executor) recordHost(ctx context.Context, host string, o Outcome, now time.Time, deferSuccess bool) (pending bool) {
	switch {
	case o.HostUp:
		if e.breaker.Success(host) {
			if deferSuccess && o.Action == Delivered {
				return true
			}
			if err := e.cfg.Queue.RecordHostSuccess(ctx, host, now); err != nil {
				e.log.Error(err, "recording host success", "host", host)
			}
		}
	case o.HostDown:
		st, err := e.cfg.Queue.RecordHostFailure(ctx, host, now, e.cfg.UnavailableAfterDays)
		if err != nil {
			e.log.Error(err, "recording host failure", "host", host)
		}
		e.breaker.Failure(host, st.ConsecutiveFailures)
		if st.Unavailable {
			e.breaker.SetUnavailable(host, true)
			e.log.Info("host unavailable: failures on distinct days", "host", host, "days", st.FailureDays)
		}
	}
	return false
}

// HeardFrom records that host sent us a verified request: an unavailable host comes
// back as soon as it is heard from (Mastodon's rule). The inbox calls it.
func (e *Executor) HeardFrom(ctx context.Context, host string) error {
	if e.breaker.State(host) == Closed {
		return nil
	}
	if err := e.cfg.Queue.RecordHostSuccess(ctx, host, e.now()); err != nil {
		return fmt.Errorf("delivery: recording that %s is back: %w", host, err)
	}
	e.breaker.Success(host)
	return nil
}
