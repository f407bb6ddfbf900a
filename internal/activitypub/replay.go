package activitypub

import (
	"container/heap"
	"sync"
	"time"
)

// ReplayCache remembers signatures until their validity window ends, so that a captured
// request cannot be delivered twice. It is bounded: when full, the entries closest to
// expiry are dropped first (they would be refused by the time window soon anyway).
type ReplayCache struct {
	mu    sync.Mutex
	max   int
	seen  map[string]time.Time
	order expiryHeap
}

// NewReplayCache returns a cache holding at most capacity signatures (minimum 1).
func NewReplayCache(capacity int) *ReplayCache {
	if capacity < 1 {
		capacity = 1
	}
	return &ReplayCache{max: capacity, seen: make(map[string]time.Time)}
}

// Seen records sig as used until until and reports whether it had already been used.
func (c *ReplayCache) Seen(sig string, until, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.order) > 0 {
		top := c.order[0]
		if !top.until.Before(now) && len(c.seen) < c.max {
			break
		}
		heap.Pop(&c.order)
		if t, ok := c.seen[top.key]; ok && t.Equal(top.until) {
			delete(c.seen, top.key)
		}
	}
	if t, ok := c.seen[sig]; ok && !t.Before(now) {
		return true
	}
	c.seen[sig] = until
	heap.Push(&c.order, expiryEntry{key: sig, until: until})
	return false
}

// Len reports how many signatures are remembered, for metrics and tests.
func (c *ReplayCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

type expiryEntry struct {
	key   string
	until time.Time
}

type expiryHeap []expiryEntry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].until.Before(h[j].until) }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiryEntry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
