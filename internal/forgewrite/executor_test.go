package forgewrite_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdk "code.gitea.io/sdk/gitea"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/forge"
	"github.com/fedforge/fedforge/internal/forge/gitea"
	"github.com/fedforge/fedforge/internal/forge/giteatest"
	"github.com/fedforge/fedforge/internal/forgewrite"
	"github.com/fedforge/fedforge/internal/store"
)

// world is a real Gitea, a real SQLite store and a forge URL the test can point at a
// closed port (the forge is down) and back.
type world struct {
	g     *giteatest.Instance
	st    store.Store
	repo  *sdk.Repository
	token string
	url   atomic.Value // string
	hc    *http.Client
	done  sync.Map // key -> store.ForgeRef, what Done saw
	dones atomic.Int64
	// failDone makes Done fail this many times first.
	failDone atomic.Int64
	// project is the project written to (a missing one makes Gitea answer 404).
	project atomic.Value // string
	dead    sync.Map     // key -> reason
}

func newWorld(t *testing.T) *world {
	g := giteatest.Start(t)
	st, err := store.Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "q.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	repo, _, err := g.Client.CreateRepo(sdk.CreateRepoOption{Name: "queue", AutoInit: true, DefaultBranch: "main"})
	if err != nil {
		t.Fatal(err)
	}
	bot := g.CreateUser(t, "fedforge", "read:repository", "write:issue")
	guard := activitypub.NewClient(activitypub.ClientConfig{AllowHTTP: true, AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	w := &world{g: g, st: st, repo: repo, token: bot.Token, hc: forge.NewAPIClient(guard, forge.APIClientConfig{})}
	w.url.Store(g.URL)
	w.project.Store(repo.FullName)
	return w
}

func (w *world) executor(t *testing.T, owner string) *forgewrite.Executor {
	e, err := forgewrite.New(forgewrite.Config{
		Store: w.st, Owner: owner, BaseDelay: 50 * time.Millisecond, MaxDelay: 200 * time.Millisecond,
		Lease: 2 * time.Minute, PollInterval: 20 * time.Millisecond,
		Target: func(ctx context.Context, actorID string) (forgewrite.Target, error) {
			project := w.project.Load().(string)
			wr, err := gitea.NewWriter(gitea.Access{Type: fedv1.SourceGitea, URL: w.url.Load().(string), Project: project, Token: w.token, HTTPClient: w.hc})
			return forgewrite.Target{Writer: wr, Repo: forge.Repository{FullName: project}}, err
		},
		Dead: func(ctx context.Context, fw store.ForgeWrite, op forgewrite.Op, reason string) {
			w.dead.Store(fw.Key, reason)
		},
		Done: func(ctx context.Context, fw store.ForgeWrite, op forgewrite.Op, ref store.ForgeRef) error {
			if w.failDone.Add(-1) >= 0 {
				return errors.New("the store is away")
			}
			w.dones.Add(1)
			w.done.Store(fw.Key, ref)
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (w *world) queue(t *testing.T, key, title string) {
	row, err := forgewrite.Row("https://h/actors/repo", forgewrite.Op{Kind: forgewrite.KindIssue, Origin: forgewrite.Origin{ActivityID: key},
		Ticket: &forge.Ticket{Title: title, Body: "body", Format: forge.FormatMarkdown, Author: forge.RemoteAuthor{Handle: "@a@p"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := w.st.EnqueueForgeWrite(context.Background(), row, time.Time{}); err != nil {
		t.Fatal(err)
	}
}

func (w *world) issues(t *testing.T, title string) int {
	list, _, err := w.g.Client.ListRepoIssues(w.repo.Owner.UserName, w.repo.Name, sdk.ListIssueOption{State: sdk.StateAll, ListOptions: sdk.ListOptions{PageSize: 50}})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, is := range list {
		if is.Title == title {
			n++
		}
	}
	return n
}

func eventually(t *testing.T, within time.Duration, ok func() bool, what string) {
	t.Helper()
	for end := time.Now().Add(within); !ok(); {
		if time.Now().After(end) {
			t.Fatalf("not within %s: %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestQueueAgainstRealGitea: one key is one issue however often it is queued and however
// many executors run; an answer lost after the forge wrote is found by the key marker
// instead of writing again; a forge that is down delays the write until it is back.
func TestQueueAgainstRealGitea(t *testing.T) {
	w := newWorld(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	t.Run("two executors, a key queued three times: one issue, one follow-up", func(t *testing.T) {
		for range 3 {
			w.queue(t, "https://p/offers/1", "once")
		}
		var wg sync.WaitGroup
		for _, owner := range []string{"replica-a", "replica-b"} {
			e := w.executor(t, owner)
			wg.Add(1)
			go func() { defer wg.Done(); _, _ = e.RunOnce(ctx) }()
		}
		wg.Wait()
		fw, err := w.st.GetForgeWrite(ctx, "https://p/offers/1")
		if err != nil || fw.State != store.ForgeWriteDone || fw.Ref.Number == 0 {
			t.Fatalf("row = %+v, %v; want done with the issue's number", fw, err)
		}
		if n := w.issues(t, "once"); n != 1 || w.dones.Load() != 1 {
			t.Errorf("%d issues and %d follow-ups, want 1 and 1", n, w.dones.Load())
		}
	})

	t.Run("a lost answer is recovered by the key marker", func(t *testing.T) {
		// The forge wrote, then the worker died before recording the answer: the issue
		// exists with the key, and the row comes back when the lease ends.
		wr, err := gitea.NewWriter(gitea.Access{URL: w.g.URL, Project: w.repo.FullName, Token: w.token, HTTPClient: w.hc})
		if err != nil {
			t.Fatal(err)
		}
		ref, err := wr.CreateIssue(ctx, forge.Repository{FullName: w.repo.FullName}, forge.Ticket{Key: "https://p/offers/2", Title: "lost", Author: forge.RemoteAuthor{Handle: "@a@p"}})
		if err != nil {
			t.Fatal(err)
		}
		w.queue(t, "https://p/offers/2", "lost")
		if rows, err := w.st.LeaseForgeWrites(ctx, store.LeaseRequest{Now: time.Now(), Limit: 1, Lease: time.Millisecond, Owner: "died"}); err != nil || len(rows) != 1 {
			t.Fatalf("lease of the dying worker = %v, %v", rows, err)
		}
		time.Sleep(10 * time.Millisecond) // its lease ends
		if _, err := w.executor(t, "replica-a").RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		fw, _ := w.st.GetForgeWrite(ctx, "https://p/offers/2")
		if fw.State != store.ForgeWriteDone || fw.Ref.Number != ref.Number {
			t.Errorf("row = %+v, want done with the recovered #%d", fw, ref.Number)
		}
		if n := w.issues(t, "lost"); n != 1 {
			t.Errorf("%d issues titled lost, want 1 (the write was not repeated)", n)
		}
	})

	t.Run("a failed follow-up is retried without writing again", func(t *testing.T) {
		w.failDone.Store(1)
		w.queue(t, "https://p/offers/4", "follow-up")
		e := w.executor(t, "replica-a")
		if _, err := e.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		fw, _ := w.st.GetForgeWrite(ctx, "https://p/offers/4")
		if fw.State != store.ForgeWritePending || !fw.HasRef || !strings.Contains(fw.LastError, "the store is away") {
			t.Fatalf("after a failed follow-up: %+v, want pending with the forge's answer recorded", fw)
		}
		eventually(t, 30*time.Second, func() bool {
			_, _ = e.RunOnce(ctx)
			fw, _ := w.st.GetForgeWrite(ctx, "https://p/offers/4")
			return fw.State == store.ForgeWriteDone
		}, "the follow-up ran again")
		if n := w.issues(t, "follow-up"); n != 1 {
			t.Errorf("%d issues titled follow-up, want 1", n)
		}
	})

	t.Run("a write the forge refuses for good is given up and reported", func(t *testing.T) {
		w.project.Store(w.repo.Owner.UserName + "/no-such-repository")
		defer w.project.Store(w.repo.FullName)
		w.queue(t, "https://p/offers/5", "refused")
		if _, err := w.executor(t, "replica-a").RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		fw, _ := w.st.GetForgeWrite(ctx, "https://p/offers/5")
		reason, told := w.dead.Load("https://p/offers/5")
		if fw.State != store.ForgeWriteDead || !told || !strings.Contains(fmt.Sprint(reason), "404") {
			t.Errorf("row %+v, Dead told %v (%v); want given up on the forge's 404", fw, told, reason)
		}
	})

	t.Run("a forge that is down delays the write, never loses it", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		closed := "http://" + ln.Addr().String()
		_ = ln.Close()
		w.url.Store(closed)
		e := w.executor(t, "replica-a")
		go func() { _ = e.Run(ctx) }()
		w.queue(t, "https://p/offers/3", "delayed")
		e.Kick()
		eventually(t, 30*time.Second, func() bool {
			fw, err := w.st.GetForgeWrite(ctx, "https://p/offers/3")
			return err == nil && fw.Attempt >= 2 && strings.Contains(fw.LastError, "forge ")
		}, "the write was attempted twice against the closed port")
		st, _ := w.st.ForgeWriteStats(ctx)
		if st.Pending != 1 || st.Retrying != 1 || st.Dead != 1 {
			t.Errorf("stats while the forge is down = %+v, want one pending retrying write (and the one refused before)", st)
		}
		w.url.Store(w.g.URL)
		eventually(t, 30*time.Second, func() bool {
			fw, err := w.st.GetForgeWrite(ctx, "https://p/offers/3")
			return err == nil && fw.State == store.ForgeWriteDone
		}, "the write landed once the forge was back")
		if n := w.issues(t, "delayed"); n != 1 {
			t.Errorf("%d issues titled delayed, want 1", n)
		}
	})
}
