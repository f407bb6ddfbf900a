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

// TestIsUnavailable: a database that does not answer is "unavailable" (peers are told to
// retry later); a statement PostgreSQL refuses is not.
func TestIsUnavailable(t *testing.T) {
	ctx := context.Background()
	_, err := Open(ctx, "postgres://postgres:x@127.0.0.1:1/none?sslmode=disable&connect_timeout=2")
	if err == nil || !IsUnavailable(err) {
		t.Errorf("Open of a closed port: %v, IsUnavailable = false", err)
	}
	for _, e := range engines(t) {
		if e.name != "postgres" {
			continue
		}
		s := openTest(t, e.dsn(t)).(*sqlStore)
		_, err := s.w.ExecContext(ctx, `SELEKT 1`)
		if err == nil || IsUnavailable(err) {
			t.Errorf("a syntax error: %v, IsUnavailable = true", err)
		}
		if err := s.Ping(ctx); err != nil {
			t.Errorf("Ping: %v", err)
		}
	}
	if IsUnavailable(nil) || IsUnavailable(errors.New("store: no such row")) {
		t.Error("nil or an ordinary error counted as unavailable")
	}
}
