package forgewrite_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fedforge/fedforge/internal/forge"
	"github.com/fedforge/fedforge/internal/forgewrite"
	"github.com/fedforge/fedforge/internal/store"
)

// TestGitKinds: merge-request writes run Config.Git (never the forge Writer): its ref is
// recorded and Done follows once; an error it marks Permanent gives the row up with its
// text as the reason; another error is retried with the attempt counted; without Git the
// row is given up. Row refuses a merge request without its payload.
func TestGitKinds(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "q.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	var (
		mu       sync.Mutex
		attempts = map[string][]int{}
		dead     = map[string]string{}
		done     = map[string]store.ForgeRef{}
		targeted atomic.Int64
	)
	newExec := func(git func(context.Context, store.ForgeWrite, forgewrite.Op) (forge.Ref, error)) *forgewrite.Executor {
		e, err := forgewrite.New(forgewrite.Config{Store: st, BaseDelay: 10 * time.Millisecond, MaxDelay: 20 * time.Millisecond,
			Target: func(context.Context, string) (forgewrite.Target, error) {
				targeted.Add(1)
				return forgewrite.Target{}, errors.New("no writer for git kinds")
			},
			Git: git,
			Done: func(_ context.Context, w store.ForgeWrite, _ forgewrite.Op, ref store.ForgeRef) error {
				mu.Lock()
				defer mu.Unlock()
				done[w.Key] = ref
				return nil
			},
			Dead: func(_ context.Context, w store.ForgeWrite, _ forgewrite.Op, reason string) {
				mu.Lock()
				defer mu.Unlock()
				dead[w.Key] = reason
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	queue := func(key string, op forgewrite.Op) {
		op.Origin.ActivityID = key
		row, err := forgewrite.Row("https://a/actors/bob", op)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := st.EnqueueForgeWrite(ctx, row, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	mr := forgewrite.Op{Kind: forgewrite.KindMergeRequest, MergeRequest: &forgewrite.MergeRequest{Title: "Fix", Branch: "fix"}}
	if _, err := forgewrite.Row("https://a/actors/bob", forgewrite.Op{Kind: forgewrite.KindMergeRequest, Origin: forgewrite.Origin{ActivityID: "k"}}); err == nil {
		t.Error("a merge-request row without its merge request was built")
	}
	if _, err := forgewrite.Row("https://a/actors/bob", forgewrite.Op{Kind: forgewrite.KindMergeRequestUpdate, Origin: forgewrite.Origin{ActivityID: "k"}}); err == nil {
		t.Error("a merge-request update without its merge request was built")
	}
	queue("ok", mr)
	queue("refused", mr)
	queue("flaky", forgewrite.Op{Kind: forgewrite.KindMergeRequestUpdate, Origin: forgewrite.Origin{TicketID: "https://a/actors/bob/merge-requests/3"}})
	e := newExec(func(_ context.Context, w store.ForgeWrite, op forgewrite.Op) (forge.Ref, error) {
		mu.Lock()
		attempts[w.Key] = append(attempts[w.Key], w.Attempt)
		mu.Unlock()
		switch w.Key {
		case "refused":
			return forge.Ref{}, forgewrite.Permanent(errors.New("the branch fix is larger than this repository accepts"))
		case "flaky":
			if w.Attempt < 3 {
				return forge.Ref{}, errors.New("forge B answered 502")
			}
			return forge.Ref{Number: 3}, nil
		}
		return forge.Ref{Number: 7, URL: "https://forge/pulls/7"}, nil
	})
	for end := time.Now().Add(10 * time.Second); ; {
		if _, err := e.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		n := len(done) + len(dead)
		mu.Unlock()
		if n == 3 {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("not done: done %v dead %v", done, dead)
		}
		time.Sleep(15 * time.Millisecond)
	}
	if done["ok"].Number != 7 || done["flaky"].Number != 3 {
		t.Errorf("done = %v, want #7 and #3", done)
	}
	if got := attempts["flaky"]; len(got) != 3 || got[2] != 3 {
		t.Errorf("attempts of the flaky write = %v, want 1, 2, 3", got)
	}
	if r := dead["refused"]; !strings.Contains(r, "larger than this repository accepts") || len(attempts["refused"]) != 1 {
		t.Errorf("refused: reason %q after %d attempts, want the reason after one", r, len(attempts["refused"]))
	}
	if w, err := st.GetForgeWrite(ctx, "ok"); err != nil || w.State != store.ForgeWriteDone || w.Ref.Number != 7 {
		t.Errorf("row ok = %+v, %v; want done with #7", w, err)
	}
	if targeted.Load() != 0 {
		t.Errorf("the forge Writer's Target was asked %d times for git kinds", targeted.Load())
	}

	queue("no-git", mr)
	if _, err := newExec(nil).RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if r := dead["no-git"]; !strings.Contains(r, "not run here") {
		t.Errorf("without Git: dead reason %q, want given up", r)
	}
}
