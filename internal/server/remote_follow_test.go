package server

import (
	"testing"
	"time"
)

func TestParseHandle(t *testing.T) {
	tests := map[string]struct {
		in         string
		user, host string
		bad        bool
	}{
		"plain":             {in: "alice@mastodon.example", user: "alice", host: "mastodon.example"},
		"leading at":        {in: "@alice@mastodon.example", user: "alice", host: "mastodon.example"},
		"acct":              {in: "acct:alice@mastodon.example", user: "alice", host: "mastodon.example"},
		"spaces around":     {in: "  alice@mastodon.example\n", user: "alice", host: "mastodon.example"},
		"with port":         {in: "alice@localhost:3000", user: "alice", host: "localhost:3000"},
		"no host":           {in: "alice", bad: true},
		"no user":           {in: "@mastodon.example", bad: true},
		"a URL":             {in: "https://mastodon.example/@alice", bad: true},
		"path after host":   {in: "alice@mastodon.example/x", bad: true},
		"query after host":  {in: "alice@mastodon.example?x", bad: true},
		"empty":             {in: "", bad: true},
		"too long":          {in: "a@" + string(make([]byte, maxHandle)), bad: true},
		"space inside host": {in: "alice@masto don.example", bad: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			user, host, err := parseHandle(tc.in)
			if tc.bad {
				if err == nil {
					t.Fatalf("parseHandle(%q) = %q, %q; want an error", tc.in, user, host)
				}
				return
			}
			if err != nil || user != tc.user || host != tc.host {
				t.Fatalf("parseHandle(%q) = %q, %q, %v; want %q, %q", tc.in, user, host, err, tc.user, tc.host)
			}
		})
	}
}

func TestLookupLimiter(t *testing.T) {
	var l lookupLimiter
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	allowed := 0
	for range 10 {
		if l.allow("192.0.2.1", now) {
			allowed++
		}
	}
	if allowed != lookupsPerMinutePerAddress/2 {
		t.Errorf("one address got %d lookups at once, want the burst %d", allowed, lookupsPerMinutePerAddress/2)
	}
	if !l.allow("192.0.2.2", now) {
		t.Error("another address is refused")
	}
	if !l.allow("192.0.2.1", now.Add(time.Minute/lookupsPerMinutePerAddress)) {
		t.Error("the first address gets no new lookup after its refill interval")
	}
	// The server-wide ceiling: many addresses at one instant get the global burst.
	var g lookupLimiter
	n := 0
	for i := range 100 {
		if g.allow(string(rune('a'+i%26))+string(rune('a'+i/26)), now) {
			n++
		}
	}
	if n != 2*lookupsPerSecond {
		t.Errorf("100 addresses at once got %d lookups, want the server's burst %d", n, 2*lookupsPerSecond)
	}
}
