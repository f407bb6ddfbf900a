package sources

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/forge"
	"github.com/fedforge/fedforge/internal/forge/forgetest"
	"github.com/fedforge/fedforge/internal/store"
)

// signed returns a delivery of payload name with the forge's headers and delivery id.
func signed(t *testing.T, name, delivery string) (http.Header, []byte) {
	t.Helper()
	tc := forgetest.Payloads[name]
	body := forgetest.Read(t, tc.File)
	h := forgetest.SignedHeaders(tc.Forge, tc.Event, body, forgetest.Secret)
	switch tc.Forge {
	case fedv1.SourceGitea:
		h.Set(forgetest.HeaderGiteaDelivery, delivery)
	case fedv1.SourceGitLab:
		h.Set(forgetest.HeaderGitLabUUID, delivery)
	default:
		t.Fatalf("no delivery header for %s", tc.Forge)
	}
	return h, body
}

// waitFor polls cond until it holds; the bound only keeps a broken test from hanging.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("never happened: %s", what)
		}
	}
}

// TestWebhookAnsweredBeforeProcessing: over real loopback HTTP, the forge's delivery is
// answered 202 while its processing (here Observe, held by the test) has not finished:
// the row is pending and nothing is published; released, the worker publishes it.
func TestWebhookAnsweredBeforeProcessing(t *testing.T) {
	f := newWebhookFixture(t)
	release, entered := make(chan struct{}), make(chan string, 1)
	f.observe = func(ctx context.Context, _ *fedv1.FederatedActor, ev *forge.Event) error {
		entered <- ev.DeliveryID
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	srv := httptest.NewServer(f.mux)
	t.Cleanup(srv.Close)
	client := srv.Client()
	client.Timeout = 30 * time.Second // a handler that waits for the processing fails the test instead of hanging it
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { _ = f.h.Run(ctx); close(stopped) }()
	t.Cleanup(func() { cancel(); <-stopped })

	h, body := signed(t, "gitea release published", "d-1")
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/hooks/releases-demo/gitea", strings.NewReader(string(body)))
	req.Header = h
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("no answer while the processing is held: %v", err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || string(answer) != "queued\n" {
		t.Fatalf("answer %d %q, want 202 queued", resp.StatusCode, answer)
	}
	if got := <-entered; got != "d-1" {
		t.Fatalf("the worker runs delivery %q", got)
	}
	// The worker is inside the processing and cannot finish it: the answer came first.
	if st, err := f.pub.St.WebhookEventStats(context.Background()); err != nil || st.Pending != 1 {
		t.Fatalf("queue while processing is held: %+v %v; want 1 pending", st, err)
	}
	if f.pub.Calls != 0 {
		t.Fatal("published before the processing was let go")
	}
	close(release)
	waitFor(t, "the event published", func() bool { return f.outcome("Gitea", resultPublished) == 1 })
	if f.pub.Created != 1 {
		t.Fatalf("%d activities stored, want 1", f.pub.Created)
	}
	if st, err := f.pub.St.WebhookEventStats(context.Background()); err != nil || st.Pending != 0 {
		t.Fatalf("queue after processing: %+v %v", st, err)
	}
}

// TestWebhookRetriedUntilPublished: publishing fails after the answer; the row stays
// pending with the error, is not run again before its backoff, and is published once
// publishing works (the forge is never asked to redeliver).
func TestWebhookRetriedUntilPublished(t *testing.T) {
	f := newWebhookFixture(t)
	f.pub.Fail = errors.New("store down")
	h, body := signed(t, "gitea release published", "d-1")
	if rec := f.post("/hooks/releases-demo/gitea", h, body); rec.Code != http.StatusAccepted {
		t.Fatalf("answer %d %s", rec.Code, rec.Body)
	}
	if n := f.drain(t); n != 1 || f.outcome("Gitea", resultRetry) != 1 {
		t.Fatalf("first attempt: %d rows, %v retries", n, f.outcome("Gitea", resultRetry))
	}
	row, err := f.pub.St.GetWebhookEvent(context.Background(), 1)
	if err != nil || row.State != store.WebhookEventPending || row.Attempt != 1 || !strings.Contains(row.LastError, "store down") {
		t.Fatalf("row after the failure: %+v %v", row, err)
	}
	f.pub.Fail = nil
	if n := f.drain(t); n != 0 {
		t.Fatalf("retried %d rows before the backoff passed", n)
	}
	f.clock.add(time.Minute)
	if n := f.drain(t); n != 1 || f.pub.Created != 1 || f.outcome("Gitea", resultPublished) != 1 {
		t.Fatalf("retry: %d rows, %d stored", n, f.pub.Created)
	}
	if row, err := f.pub.St.GetWebhookEvent(context.Background(), 1); err != nil || row.State != store.WebhookEventDone {
		t.Fatalf("row after the retry: %+v %v", row, err)
	}
}

// TestWebhookPanicIsRetried: a panic while an event is processed (here after the store
// has the activity) fails that attempt only: the worker lives on, the row is retried
// after its backoff and then finished, so the source's next events are not held behind a
// row leased by a dead process.
func TestWebhookPanicIsRetried(t *testing.T) {
	f := newWebhookFixture(t)
	f.pub.PanicAfterStore = "nil executor"
	h, body := signed(t, "gitea release published", "d-1")
	if rec := f.post("/hooks/releases-demo/gitea", h, body); rec.Code != http.StatusAccepted {
		t.Fatalf("answer %d %s", rec.Code, rec.Body)
	}
	if n := f.drain(t); n != 1 || f.outcome("Gitea", resultRetry) != 1 {
		t.Fatalf("first attempt: %d rows, %v retries", n, f.outcome("Gitea", resultRetry))
	}
	row, err := f.pub.St.GetWebhookEvent(context.Background(), 1)
	if err != nil || row.State != store.WebhookEventPending || row.LeaseOwner != "" || !strings.Contains(row.LastError, "processing panicked: nil executor") {
		t.Fatalf("row after the panic: %+v %v", row, err)
	}
	f.clock.add(time.Minute)
	if n := f.drain(t); n != 1 || f.outcome("Gitea", resultPublished) != 1 {
		t.Fatalf("retry: %d rows, published %v", n, f.outcome("Gitea", resultPublished))
	}
	if row, err := f.pub.St.GetWebhookEvent(context.Background(), 1); err != nil || row.State != store.WebhookEventDone {
		t.Fatalf("row after the retry: %+v %v", row, err)
	}
	if f.pub.Created != 1 {
		t.Errorf("activities stored: %d, want 1 (the retry finds it stored)", f.pub.Created)
	}
}

// TestWebhookQueueSurvivesRestart: events accepted by a server that stops before its
// worker ran are processed by the next one on the same database.
func TestWebhookQueueSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fedforge.db")
	st, err := store.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	before := newWebhookFixtureOn(t, st)
	for _, d := range []struct{ name, source, delivery string }{
		{"gitea release published", "gitea", "d-1"}, {"gitlab release", "gitlab", "d-2"},
	} {
		h, body := signed(t, d.name, d.delivery)
		if rec := before.post("/hooks/releases-demo/"+d.source, h, body); rec.Code != http.StatusAccepted {
			t.Fatalf("%s: %d %s", d.name, rec.Code, rec.Body)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st, err = store.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	after := newWebhookFixtureOn(t, st)
	if n := after.drain(t); n != 2 || after.pub.Created != 2 {
		t.Fatalf("after the restart: %d rows run, %d activities stored; want 2 and 2", n, after.pub.Created)
	}
}

// TestWebhookSourceOrder: a source's events are processed in the order they were
// accepted, even when the first fails and waits for its retry; another source's events
// do not wait for it.
func TestWebhookSourceOrder(t *testing.T) {
	f := newWebhookFixture(t)
	var mu sync.Mutex
	var seen []string
	f.observe = func(_ context.Context, _ *fedv1.FederatedActor, ev *forge.Event) error {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, ev.DeliveryID)
		if ev.DeliveryID == "opened" && slices.Index(seen, "opened") == len(seen)-1 {
			return errors.New("forge down") // the first attempt of the opening fails
		}
		return nil
	}
	for _, d := range []struct{ name, source, delivery string }{
		{"gitea pull request opened", "gitea", "opened"}, {"gitea pull request merged", "gitea", "merged"},
		{"gitlab release", "gitlab", "other"},
	} {
		h, body := signed(t, d.name, d.delivery)
		if rec := f.post("/hooks/releases-demo/"+d.source, h, body); rec.Code != http.StatusAccepted {
			t.Fatalf("%s: %d %s", d.name, rec.Code, rec.Body)
		}
	}
	if n := f.drain(t); n != 2 {
		t.Fatalf("first run: %d rows, want the head of each source (2)", n)
	}
	if got := strings.Join(seen, ","); got != "opened,other" && got != "other,opened" {
		t.Fatalf("first run saw %s; the merge must wait for the opening", got)
	}
	f.clock.add(time.Minute)
	if n := f.drain(t); n != 2 {
		t.Fatalf("after the backoff: %d rows, want the opening then the merge", n)
	}
	var gitea []string
	for _, d := range seen {
		if d != "other" {
			gitea = append(gitea, d)
		}
	}
	if got := strings.Join(gitea, ","); got != "opened,opened,merged" {
		t.Fatalf("the gitea source ran %s, want opened,opened,merged", got)
	}
}

// TestWebhookEventGivenUp: an event that no retry can help (its webhook removed since,
// a row that cannot be decoded) is counted as failed, logged with the forge's host and
// not run again, and its source's next event goes on.
func TestWebhookEventGivenUp(t *testing.T) {
	f := newWebhookFixture(t)
	h, body := signed(t, "gitea release published", "d-1")
	if rec := f.post("/hooks/releases-demo/gitea", h, body); rec.Code != http.StatusAccepted {
		t.Fatalf("answer %d %s", rec.Code, rec.Body)
	}
	bad, _, err := f.pub.St.EnqueueWebhookEvent(context.Background(), store.WebhookEvent{Username: "releases-demo", Source: "gitea",
		Forge: "Gitea", Payload: json.RawMessage(`[1]`)}, f.clock.now())
	if err != nil {
		t.Fatal(err)
	}
	h2, body2 := signed(t, "gitea release published", "d-2")
	if rec := f.post("/hooks/releases-demo/gitea", h2, body2); rec.Code != http.StatusAccepted {
		t.Fatalf("answer %d %s", rec.Code, rec.Body)
	}
	f.gone.Store(true)
	if n, err := f.h.RunOnce(context.Background()); err != nil || n != 1 || f.outcome("Gitea", resultFailed) != 1 {
		t.Fatalf("with the webhook gone: %d rows, %v failed", n, f.outcome("Gitea", resultFailed))
	}
	if logs := f.logs.text(); !strings.Contains(logs, "given up") || !strings.Contains(logs, "git.xxx") {
		t.Errorf("the failure is not logged with the forge's host:\n%s", logs)
	}
	f.gone.Store(false)
	if n := f.drain(t); n != 2 || f.outcome("Gitea", resultFailed) != 2 || f.outcome("Gitea", resultPublished) != 1 {
		t.Fatalf("then: %d rows, %v failed, %v published; want the undecodable row given up and d-2 published",
			n, f.outcome("Gitea", resultFailed), f.outcome("Gitea", resultPublished))
	}
	if row, err := f.pub.St.GetWebhookEvent(context.Background(), bad.ID); err != nil || row.State != store.WebhookEventDead || row.LastError == "" {
		t.Fatalf("undecodable row: %+v %v", row, err)
	}
	if st, err := f.pub.St.WebhookEventStats(context.Background()); err != nil || st.Pending != 0 || st.Dead != 2 {
		t.Fatalf("queue: %+v %v", st, err)
	}
}
