package delivery

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/fedforge/fedforge/internal/activitypub"
)

// Defaults of RetryPolicy: 16 attempts, the n-th retry after 30 s·2^(n-1) capped at 10 h,
// ±20 % jitter. The nominal schedule spans about 57 hours (2.4 days), Mastodon's order.
const (
	// DefaultMaxAttempts is how many leases a row gets before it may be given up.
	DefaultMaxAttempts = 16
	// DefaultBaseDelay is the wait after the first failure.
	DefaultBaseDelay = 30 * time.Second
	// DefaultMaxDelay caps one wait.
	DefaultMaxDelay = 10 * time.Hour
	// DefaultJitter spreads waits over ±20 %.
	DefaultJitter = 0.2
	// DefaultMaxRetryAfter caps a peer's Retry-After.
	DefaultMaxRetryAfter = 24 * time.Hour
)

// RetryPolicy decides when a failed delivery is tried again and when it is given up.
// Backoff is exponential with multiplicative jitter, so that the retries of one fan-out
// to a host that was down do not all arrive in the same second when it comes back.
type RetryPolicy struct {
	// MaxAttempts is how many times a row is leased before it may be given up.
	MaxAttempts int
	// BaseDelay is the wait after the first failed attempt; it doubles each attempt.
	BaseDelay time.Duration
	// MaxDelay caps one wait.
	MaxDelay time.Duration
	// Jitter spreads each wait uniformly over ±Jitter of its nominal value (0..1).
	Jitter float64
	// MaxRetryAfter caps a peer's Retry-After, so a hostile header cannot park a row
	// for a year.
	MaxRetryAfter time.Duration
	// Rand returns a number in [0, 1); nil means math/rand/v2. Tests pin it.
	Rand func() float64
}

// DefaultRetryPolicy returns the schedule described in docs/delivery.md.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{
		MaxAttempts: DefaultMaxAttempts, BaseDelay: DefaultBaseDelay, MaxDelay: DefaultMaxDelay,
		Jitter: DefaultJitter, MaxRetryAfter: DefaultMaxRetryAfter,
	}
}

// withDefaults fills zero fields, so a partly set policy still works.
func (p RetryPolicy) withDefaults() RetryPolicy {
	d := DefaultRetryPolicy()
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = d.MaxAttempts
	}
	if p.BaseDelay <= 0 {
		p.BaseDelay = d.BaseDelay
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = d.MaxDelay
	}
	if p.Jitter < 0 || p.Jitter >= 1 {
		p.Jitter = d.Jitter
	}
	if p.MaxRetryAfter <= 0 {
		p.MaxRetryAfter = d.MaxRetryAfter
	}
	return p
}

// Nominal returns the wait after failed attempt n (1-based) without jitter.
func (p RetryPolicy) Nominal(attempt int) time.Duration {
	p = p.withDefaults()
	if attempt < 1 {
		attempt = 1
	}
	d := float64(p.BaseDelay) * math.Pow(2, float64(attempt-1))
	if d >= float64(p.MaxDelay) {
		return p.MaxDelay
	}
	return time.Duration(d)
}

// Backoff returns the wait after failed attempt n (1-based), with jitter.
func (p RetryPolicy) Backoff(attempt int) time.Duration {
	p = p.withDefaults()
	r := p.Rand
	if r == nil {
		r = rand.Float64
	}
	f := 1 + p.Jitter*(2*r()-1)
	return time.Duration(float64(p.Nominal(attempt)) * f)
}

// Window is the nominal time from the first attempt to the last one: the sum of the
// waits after attempts 1..MaxAttempts-1. A row is not given up on retries before its
// activity is this old, whatever the attempt count, so that rows held back by an open
// circuit get the same window as rows that were tried.
func (p RetryPolicy) Window() time.Duration {
	p = p.withDefaults()
	var w time.Duration
	for n := 1; n < p.MaxAttempts; n++ {
		w += p.Nominal(n)
	}
	return w
}

// Exhausted reports whether a row on its attempt-th lease, for an activity published at
// published, has used up its retries at now.
func (p RetryPolicy) Exhausted(attempt int, published, now time.Time) bool {
	p = p.withDefaults()
	if attempt < p.MaxAttempts {
		return false
	}
	return published.IsZero() || !now.Before(published.Add(p.Window()))
}

// Next returns when a row that failed its attempt-th try at now is tried again: after
// the backoff, or after the peer's Retry-After (capped) when that is later.
func (p RetryPolicy) Next(attempt int, now time.Time, retryAfter time.Duration) time.Time {
	p = p.withDefaults()
	d := p.Backoff(attempt)
	if retryAfter > p.MaxRetryAfter {
		retryAfter = p.MaxRetryAfter
	}
	if retryAfter > d {
		d = retryAfter
	}
	return now.Add(d)
}

// ParseRetryAfter reads a Retry-After header (RFC 9110: delay-seconds or an HTTP-date)
// relative to now. It returns 0 when the header is absent, malformed or in the past.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s <= 0 {
			return 0
		}
		if s > int64(math.MaxInt64/int64(time.Second)) {
			return time.Duration(math.MaxInt64)
		}
		return time.Duration(s) * time.Second
	}
	t, err := http.ParseTime(v)
	if err != nil || !t.After(now) {
		return 0
	}
	return t.Sub(now)
}

// Action is what the executor does with a row after one attempt.
type Action int

// The actions, in the order of the switch in Classify.
const (
	// Delivered: the inbox answered 2xx; the row is never sent again.
	Delivered Action = iota
	// Retry: a transient failure (network, 5xx, 401, 408, 429, 3xx); tried again later.
	Retry
	// Drop: a permanent failure (4xx other than 401/408/429, 501, refused address);
	// the row is given up without retrying.
	Drop
	// Gone: 410 from the inbox; the row is given up and OnGone is told, so the caller
	// can remove the Subscription of an actor that no longer exists.
	Gone
)

// String names the action for logs and metric labels.
func (a Action) String() string {
	switch a {
	case Delivered:
		return "delivered"
	case Retry:
		return "retry"
	case Drop:
		return "drop"
	case Gone:
		return "gone"
	}
	return "unknown"
}

// Outcome classifies one attempt.
type Outcome struct {
	// Action is what to do with the row.
	Action Action
	// Status is the HTTP status, 0 when no response was read.
	Status int
	// HostDown is set when the attempt counts against the host (no answer, 5xx, or a
	// status Mastodon retries): it feeds the circuit breaker and the unavailable-days count.
	HostDown bool
	// HostUp is set when the host answered in a way that proves it is alive (2xx, or
	// a permanent 4xx): its failure counters are reset.
	HostUp bool
	// RetryAfter is the peer's Retry-After, 0 when absent.
	RetryAfter time.Duration
	// Reason is a short description for last_error and logs; it never holds secrets.
	Reason string
}

// retryableStatus reports the statuses Mastodon retries: 401 (a key not fetched yet),
// 408, 429, every 3xx and 5xx except 501, and anything outside the known classes.
func retryableStatus(code int) bool {
	switch {
	case code == http.StatusNotImplemented:
		return false
	case code == http.StatusUnauthorized, code == http.StatusRequestTimeout, code == http.StatusTooManyRequests:
		return true
	case code >= 400 && code < 500:
		return false
	}
	return true
}

// Classify turns the result of Client.Deliver into an Outcome. host names the target
// in reasons, so that last_error says where a failure came from.
func Classify(host string, resp *activitypub.Response, err error, now time.Time) Outcome {
	if err != nil {
		var ae *activitypub.Error
		if errors.As(err, &ae) {
			switch ae.Kind {
			case activitypub.KindForbidden, activitypub.KindMalformed:
				// Refused address, scheme or URL: trying again cannot help.
				return Outcome{Action: Drop, Reason: truncate(err.Error())}
			case activitypub.KindUnsupported:
				// Our own signing failed: not the host's fault, try later.
				return Outcome{Action: Retry, Reason: truncate(err.Error())}
			}
		}
		return Outcome{Action: Retry, HostDown: true, Reason: truncate(fmt.Sprintf("POST to %s: %v", host, err))}
	}
	code := resp.Status
	o := Outcome{Status: code}
	switch {
	case code >= 200 && code < 300:
		o.Action, o.HostUp = Delivered, true
		return o
	case code == http.StatusGone:
		o.Action, o.HostUp = Gone, true
	case retryableStatus(code):
		o.Action, o.HostDown = Retry, true
		o.RetryAfter = ParseRetryAfter(resp.Header.Get("Retry-After"), now)
	default:
		o.Action, o.HostUp = Drop, true
	}
	o.Reason = fmt.Sprintf("%s answered %d %s", host, code, http.StatusText(code))
	return o
}

// truncate bounds a reason stored in last_error.
func truncate(s string) string {
	const max = 500
	if len(s) > max {
		return s[:max]
	}
	return s
}
