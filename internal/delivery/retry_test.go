package delivery

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/fedforge/fedforge/internal/activitypub"
)

func TestClassify(t *testing.T) {
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	resp := func(code int, h ...string) *activitypub.Response {
		hd := http.Header{}
		for i := 0; i+1 < len(h); i += 2 {
			hd.Set(h[i], h[i+1])
		}
		return &activitypub.Response{Status: code, Header: hd}
	}
	netErr := &activitypub.Error{Kind: activitypub.KindRemote, Host: "h.test", Err: errors.New("connection refused")}
	tests := map[string]struct {
		resp       *activitypub.Response
		err        error
		action     Action
		hostDown   bool
		hostUp     bool
		retryAfter time.Duration
	}{
		"200":                         {resp: resp(200), action: Delivered, hostUp: true},
		"202":                         {resp: resp(202), action: Delivered, hostUp: true},
		"204":                         {resp: resp(204), action: Delivered, hostUp: true},
		"301 after redirects":         {resp: resp(301), action: Retry, hostDown: true},
		"400 permanent":               {resp: resp(400), action: Drop, hostUp: true},
		"401 retried (key not known)": {resp: resp(401), action: Retry, hostDown: true},
		"403 permanent":               {resp: resp(403), action: Drop, hostUp: true},
		"404 permanent":               {resp: resp(404), action: Drop, hostUp: true},
		"408 retried":                 {resp: resp(408), action: Retry, hostDown: true},
		"410 gone":                    {resp: resp(410), action: Gone, hostUp: true},
		"413 permanent":               {resp: resp(413), action: Drop, hostUp: true},
		"422 permanent":               {resp: resp(422), action: Drop, hostUp: true},
		"429 retried":                 {resp: resp(429), action: Retry, hostDown: true},
		"429 with Retry-After":        {resp: resp(429, "Retry-After", "120"), action: Retry, hostDown: true, retryAfter: 2 * time.Minute},
		"500 retried":                 {resp: resp(500), action: Retry, hostDown: true},
		"501 not retried":             {resp: resp(501), action: Drop, hostUp: true},
		"502 retried":                 {resp: resp(502), action: Retry, hostDown: true},
		"503 with HTTP-date":          {resp: resp(503, "Retry-After", now.Add(time.Hour).Format(http.TimeFormat)), action: Retry, hostDown: true, retryAfter: time.Hour},
		"504 retried":                 {resp: resp(504), action: Retry, hostDown: true},
		"network error":               {err: netErr, action: Retry, hostDown: true},
		"plain error":                 {err: errors.New("dial tcp: i/o timeout"), action: Retry, hostDown: true},
		"refused address (SSRF)":      {err: &activitypub.Error{Kind: activitypub.KindForbidden, Host: "h.test"}, action: Drop},
		"malformed inbox URL":         {err: &activitypub.Error{Kind: activitypub.KindMalformed}, action: Drop},
		"our signing failed":          {err: &activitypub.Error{Kind: activitypub.KindUnsupported}, action: Retry},
		"wrapped network error":       {err: fmt.Errorf("post: %w", netErr), action: Retry, hostDown: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			o := Classify("h.test", tc.resp, tc.err, now)
			if o.Action != tc.action || o.HostDown != tc.hostDown || o.HostUp != tc.hostUp || o.RetryAfter != tc.retryAfter {
				t.Fatalf("Classify = %+v, want action %s hostDown %v hostUp %v retryAfter %s", o, tc.action, tc.hostDown, tc.hostUp, tc.retryAfter)
			}
			if o.Reason == "" && o.Action != Delivered {
				t.Fatal("a failure has no reason")
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	tests := map[string]struct {
		in   string
		want time.Duration
	}{
		"empty":             {"", 0},
		"seconds":           {"120", 2 * time.Minute},
		"spaces":            {" 30 ", 30 * time.Second},
		"zero":              {"0", 0},
		"negative":          {"-5", 0},
		"HTTP-date":         {now.Add(90 * time.Minute).Format(http.TimeFormat), 90 * time.Minute},
		"RFC 850 date":      {now.Add(time.Hour).Format("Monday, 02-Jan-06 15:04:05 GMT"), time.Hour},
		"date in the past":  {now.Add(-time.Hour).Format(http.TimeFormat), 0},
		"garbage":           {"soon", 0},
		"huge seconds":      {"99999999999999999", time.Duration(1<<63 - 1)},
		"fractional number": {"1.5", 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := ParseRetryAfter(tc.in, now); got != tc.want {
				t.Fatalf("ParseRetryAfter(%q) = %s, want %s", tc.in, got, tc.want)
			}
		})
	}
}

func TestSchedule(t *testing.T) {
	p := DefaultRetryPolicy()
	nominal := map[int]time.Duration{
		1: 30 * time.Second, 2: time.Minute, 3: 2 * time.Minute, 5: 8 * time.Minute,
		8: 64 * time.Minute, 11: 512 * time.Minute, 12: 10 * time.Hour, 15: 10 * time.Hour, 40: 10 * time.Hour,
	}
	for n, want := range nominal {
		if got := p.Nominal(n); got != want {
			t.Errorf("Nominal(%d) = %s, want %s", n, got, want)
		}
	}
	// 16 attempts over about 2.4 days, Mastodon's order of magnitude.
	if w := p.Window(); w < 50*time.Hour || w > 65*time.Hour {
		t.Errorf("Window = %s, want about 57 h", w)
	}
	tests := map[string]struct {
		rand   float64
		factor float64
	}{"low jitter": {0, 0.8}, "no jitter": {0.5, 1}, "high jitter": {0.999999, 1.2}}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			q := p
			q.Rand = func() float64 { return tc.rand }
			got := q.Backoff(4)
			want := time.Duration(float64(4*time.Minute) * tc.factor)
			if diff := got - want; diff < -time.Millisecond || diff > time.Millisecond {
				t.Fatalf("Backoff(4) = %s, want %s", got, want)
			}
		})
	}
}

func TestNextHonoursRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	p := DefaultRetryPolicy()
	p.Rand = func() float64 { return 0.5 }
	tests := map[string]struct {
		attempt    int
		retryAfter time.Duration
		want       time.Duration
	}{
		"backoff when no header":          {1, 0, 30 * time.Second},
		"header longer than backoff":      {1, time.Hour, time.Hour},
		"header shorter than backoff":     {10, time.Minute, p.Nominal(10)},
		"header capped at MaxRetryAfter":  {1, 400 * 24 * time.Hour, DefaultMaxRetryAfter},
		"backoff capped at MaxDelay":      {30, 0, DefaultMaxDelay},
		"cap applies before the max rule": {12, 30 * 24 * time.Hour, DefaultMaxRetryAfter},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := p.Next(tc.attempt, now, tc.retryAfter).Sub(now); got != tc.want {
				t.Fatalf("Next = now+%s, want now+%s", got, tc.want)
			}
		})
	}
}

func TestExhausted(t *testing.T) {
	p := DefaultRetryPolicy()
	pub := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	tests := map[string]struct {
		attempt int
		now     time.Time
		want    bool
	}{
		"first attempt":                       {1, pub, false},
		"15th attempt after the window":       {15, pub.Add(10 * 24 * time.Hour), false},
		"16th attempt inside the window":      {16, pub.Add(24 * time.Hour), false},
		"16th attempt after the window":       {16, pub.Add(p.Window()), true},
		"many bounces, window not over":       {40, pub.Add(time.Hour), false},
		"unknown publication, enough leases":  {16, pub, true},
		"unknown publication, too few leases": {3, pub, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			published := pub
			if name == "unknown publication, enough leases" || name == "unknown publication, too few leases" {
				published = time.Time{}
			}
			if got := p.Exhausted(tc.attempt, published, tc.now); got != tc.want {
				t.Fatalf("Exhausted(%d) = %v, want %v", tc.attempt, got, tc.want)
			}
		})
	}
}
