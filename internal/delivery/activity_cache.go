package delivery

import (
	"context"
	"sync"

	"github.com/fedforge/fedforge/internal/store"
)

// activityCache keeps the bodies of recent activities, so a fan-out of one activity
// reads it once; concurrent readers of one ID share the read.
type activityCache struct {
	mu    sync.Mutex
	max   int
	m     map[string]*activityEntry
	order []string
}

type activityEntry struct {
	done chan struct{}
	a    store.Activity
	err  error
}

func newActivityCache(max int) *activityCache {
	return &activityCache{max: max, m: map[string]*activityEntry{}}
}

func (c *activityCache) get(ctx context.Context, q Queue, id string) (store.Activity, error) {
	c.mu.Lock()
	if en, ok := c.m[id]; ok {
		c.mu.Unlock()
		select {
		case <-en.done:
			return en.a, en.err
		case <-ctx.Done():
			return store.Activity{}, ctx.Err()
		}
	}
	en := &activityEntry{done: make(chan struct{})}
	c.m[id] = en
	c.order = append(c.order, id)
	for len(c.order) > c.max {
		delete(c.m, c.order[0])
		c.order = c.order[1:]
	}
	c.mu.Unlock()
	en.a, en.err = q.GetActivity(ctx, id)
	close(en.done)
	if en.err != nil {
		c.mu.Lock()
		if c.m[id] == en {
			delete(c.m, id)
		}
		c.mu.Unlock()
	}
	return en.a, en.err
}
