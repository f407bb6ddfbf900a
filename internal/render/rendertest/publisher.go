package rendertest

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/store"
)

// OpenStore opens a fresh SQLite store, the default engine.
func OpenStore(t *testing.T) store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "fedforge.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// StorePublisher publishes into a real store, the way the server does (without
// deliveries), and remembers every call, so that tests see both what was asked and
// what the store kept.
type StorePublisher struct {
	St      store.Store
	mu      sync.Mutex
	Calls   int              // Publish calls
	Created int              // activities the store did not hold yet
	Acts    []store.Activity // those activities, in order
	Fail    error            // when set, Publish fails with it
	// PanicAfterStore, when set, makes the next Publish panic with it once the store has
	// the activities (as the server's publisher did when it kicked a nil executor).
	PanicAfterStore any
}

// Publish has the signature of the server's publish function.
func (p *StorePublisher) Publish(ctx context.Context, _ *fedv1.FederatedActor, _ *fedv1.EventSource, acts []store.Activity) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.Calls++
	if p.Fail != nil {
		return p.Fail
	}
	for _, a := range acts {
		created, err := p.St.AppendActivity(ctx, a, nil)
		if err != nil {
			return err
		}
		if created {
			p.Created++
			p.Acts = append(p.Acts, a)
		}
	}
	if v := p.PanicAfterStore; v != nil {
		p.PanicAfterStore = nil
		panic(v)
	}
	return nil
}
