package server

import (
	"context"
	"sync"
)

// recentActivitiesPerGeneration bounds the memory of recently recorded activity ids:
// two generations of this many ids (a few MiB at most) are remembered, the older
// generation being dropped when the newer one is full. Peers retry within minutes,
// so this answers almost every replay without a store read; older replays fall
// through to the store, whose unique id remains the truth.
const recentActivitiesPerGeneration = 1 << 15

// recentActivities is the inbox's first replay check: the ids of activities this
// process recorded in the received log lately, and the ids being processed right
// now. An id is remembered only once the store has committed its row, so a hit is
// always a durable record and may be answered 202 at once. A second copy of an
// activity that arrives while the first is being processed waits for the first: it
// is a replay if the first was recorded, and is processed itself if the first failed
// (so a failure never answers 202 to either copy). The zero value is ready to use.
type recentActivities struct {
	mu       sync.Mutex
	cur, old map[string]struct{}
	inflight map[string]*activityClaim
}

// activityClaim is the right to process one activity id; finish releases it.
type activityClaim struct {
	r        *recentActivities
	id       string
	recorded bool          // set before done is closed
	done     chan struct{} // closed by finish
}

// claim returns replay=true when id was recorded lately (or by a concurrent copy
// that this call waited for), and otherwise a claim that the caller must finish. It
// fails only when ctx ends while waiting for a concurrent copy.
func (r *recentActivities) claim(ctx context.Context, id string) (c *activityClaim, replay bool, err error) {
	for {
		r.mu.Lock()
		if r.knowsLocked(id) {
			r.mu.Unlock()
			return nil, true, nil
		}
		other, busy := r.inflight[id]
		if !busy {
			if r.inflight == nil {
				r.inflight = map[string]*activityClaim{}
			}
			c = &activityClaim{r: r, id: id, done: make(chan struct{})}
			r.inflight[id] = c
			r.mu.Unlock()
			return c, false, nil
		}
		r.mu.Unlock()
		select {
		case <-other.done:
			if other.recorded {
				return nil, true, nil
			}
			// The other copy failed: try again, and maybe process this one.
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
}

// finish releases the claim. recorded says the activity's row is committed in the
// received log (new or a replay the store recognised): later copies are replays.
func (c *activityClaim) finish(recorded bool) {
	r := c.r
	r.mu.Lock()
	delete(r.inflight, c.id)
	if recorded {
		r.rememberLocked(c.id)
	}
	c.recorded = recorded
	r.mu.Unlock()
	close(c.done)
}

func (r *recentActivities) knowsLocked(id string) bool {
	if _, ok := r.cur[id]; ok {
		return true
	}
	_, ok := r.old[id]
	return ok
}

func (r *recentActivities) rememberLocked(id string) {
	if r.cur == nil {
		r.cur = make(map[string]struct{}, 1024)
	}
	if len(r.cur) >= recentActivitiesPerGeneration {
		r.old, r.cur = r.cur, make(map[string]struct{}, len(r.cur))
	}
	r.cur[id] = struct{}{}
}
