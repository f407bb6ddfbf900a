package sources

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"slices"
	"sync"
	"testing"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/forge"
	"github.com/fedforge/fedforge/internal/store"
)

// postgresSchema returns a DSN for a fresh schema of the test PostgreSQL, dropped at
// cleanup. Like the store's conformance tests, it fails without a database unless
// FEDFORGE_TEST_POSTGRES=off says to run without one.
func postgresSchema(t *testing.T) string {
	t.Helper()
	base := os.Getenv("FEDFORGE_TEST_POSTGRES_DSN")
	if base == "" {
		if os.Getenv("FEDFORGE_TEST_POSTGRES") == "off" {
			t.Skip("FEDFORGE_TEST_POSTGRES=off: this test needs PostgreSQL, which several replicas share")
		}
		t.Fatal(`FEDFORGE_TEST_POSTGRES_DSN is not set: run export FEDFORGE_TEST_POSTGRES_DSN="$(hack/test-postgres.sh)" first`)
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "src_" + hex.EncodeToString(b)
	if _, err := admin.ExecContext(context.Background(), `CREATE SCHEMA `+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() { _, _ = admin.ExecContext(context.Background(), `DROP SCHEMA `+schema+` CASCADE`) })
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// TestWebhookQueueTwoReplicas: two replicas on one PostgreSQL accept deliveries in turn
// and both run their workers; every delivery is processed once, by one of them, and each
// source's deliveries in the order they were accepted.
func TestWebhookQueueTwoReplicas(t *testing.T) {
	dsn := postgresSchema(t)
	var mu sync.Mutex
	var seen []string // "<source>/<delivery>", in the order Observe ran
	var replicas []*webhookFixture
	for range 2 {
		st, err := store.Open(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		f := newWebhookFixtureOn(t, st)
		f.observe = func(_ context.Context, _ *fedv1.FederatedActor, ev *forge.Event) error {
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, string(ev.Forge)+"/"+ev.DeliveryID)
			return nil
		}
		replicas = append(replicas, f)
	}
	const perSource = 6
	var want []string
	for i := range perSource {
		for _, d := range []struct{ payload, source string }{{"gitea release published", "gitea"}, {"gitlab release", "gitlab"}} {
			delivery := fmt.Sprintf("%s-%d", d.source, i)
			h, body := signed(t, d.payload, delivery)
			f := replicas[i%2] // deliveries reach either replica, as behind a Service
			if rec := f.post("/hooks/releases-demo/"+d.source, h, body); rec.Code != 202 {
				t.Fatalf("%s: %d %s", delivery, rec.Code, rec.Body)
			}
			want = append(want, delivery)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, f := range replicas {
		wg.Add(1)
		go func() { defer wg.Done(); _ = f.h.Run(ctx) }()
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	processed := func() float64 {
		n := 0.0
		for _, f := range replicas {
			n += f.outcome("Gitea", resultPublished) + f.outcome("GitLab", resultPublished)
		}
		return n
	}
	waitFor(t, "every delivery processed", func() bool { return processed() == 2*perSource })
	cancel()
	wg.Wait()
	if n := processed(); n != 2*perSource {
		t.Fatalf("%v deliveries published, want %d (each once)", n, 2*perSource)
	}
	for i, f := range replicas {
		t.Logf("replica %d processed %v", i, f.outcome("Gitea", resultPublished)+f.outcome("GitLab", resultPublished))
	}
	mu.Lock()
	defer mu.Unlock()
	for _, src := range []string{"Gitea", "GitLab"} {
		var got, exp []string
		for _, s := range seen {
			if len(s) > len(src) && s[:len(src)+1] == src+"/" {
				got = append(got, s[len(src)+1:])
			}
		}
		for _, w := range want {
			if (src == "Gitea") == (w[:5] == "gitea") {
				exp = append(exp, w)
			}
		}
		if !slices.Equal(got, exp) {
			t.Errorf("%s source ran %v, want each delivery once in acceptance order %v", src, got, exp)
		}
	}
}
