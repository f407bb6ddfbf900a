package store

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
)

// TestClaimHost: the first server claims the database; the same host (another replica,
// a restart, another spelling of its case) is let in; another host is refused with
// ErrHostMismatch naming both, on both engines, also when replicas race.
func TestClaimHost(t *testing.T) {
	ctx := context.Background()
	for _, e := range engines(t) {
		t.Run(e.name, func(t *testing.T) {
			dsn := e.dsn(t)
			a, b := openTest(t, dsn), openTest(t, dsn)
			var wg sync.WaitGroup
			errs := make([]error, 8)
			for i := range errs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					s := a
					if i%2 == 1 {
						s = b
					}
					errs[i] = s.ClaimHost(ctx, "forge.example")
				}()
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("replica claim %d: %v", i, err)
				}
			}
			if err := b.ClaimHost(ctx, "Forge.Example"); err != nil {
				t.Errorf("same host in another case: %v", err)
			}
			err := b.ClaimHost(ctx, "other.example")
			if !errors.Is(err, ErrHostMismatch) {
				t.Fatalf("another host: %v, want ErrHostMismatch", err)
			}
			if got := err.Error(); !strings.Contains(got, "forge.example") || !strings.Contains(got, "other.example") {
				t.Errorf("error %q does not name both hosts", got)
			}
			if err := a.ClaimHost(ctx, ""); err == nil {
				t.Error("an empty host was accepted")
			}
		})
	}
}
