package app

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
)

// TestServerReportsItsStore runs `fedforge server`'s code path against a real
// PostgreSQL and a real API server: with a wrong password in its DSN Secret it keeps
// retrying and reports StoreReady=False with the driver's message (no crash, nothing
// served); once the Secret is fixed the same process opens the store, serves and reports
// True; a second FederationServer pointed at the same database is refused with
// StoreHostMismatch, because two servers must never share one.
func TestServerReportsItsStore(t *testing.T) {
	// Not parallel: it shortens the package-wide storeRetry.
	base := os.Getenv("FEDFORGE_TEST_POSTGRES_DSN")
	if base == "" {
		t.Fatal("FEDFORGE_TEST_POSTGRES_DSN is not set: run `export FEDFORGE_TEST_POSTGRES_DSN=\"$(hack/test-postgres.sh)\"` (make test does)")
	}
	setTestLogger()
	old := storeRetry
	storeRetry.first, storeRetry.max = 50*time.Millisecond, 200*time.Millisecond
	t.Cleanup(func() { storeRetry = old })

	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets(t),
	}
	cfg, err := env.Start()
	must(t, err)
	t.Cleanup(func() { _ = env.Stop() })
	k, err := client.New(cfg, client.Options{Scheme: Scheme()})
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	ns := "store"
	must(t, k.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
	dsn := freshSchema(t, base)
	wrong, err := url.Parse(dsn)
	must(t, err)
	wrong.User = url.UserPassword(wrong.User.Username(), "not-the-password")
	// Server one reads its DSN from a Secret (as the operator's Deployment does, through
	// FEDFORGE_STORE_DSN and spec.storage.postgres); it starts with a wrong password.
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db"}, Data: map[string][]byte{"dsn": []byte(wrong.String())}}
	must(t, k.Create(ctx, secret))
	pg := &fedv1.ServerStorage{Postgres: &fedv1.PostgresStorage{DSNSecretRef: fedv1.SecretKeyReference{Name: "db"}}}
	for name, host := range map[string]string{"one": "one.fedforge.test", "two": "two.fedforge.test"} {
		must(t, k.Create(ctx, &fedv1.FederationServer{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec:       fedv1.FederationServerSpec{Host: host, Scheme: fedv1.SchemeHTTP, Storage: pg},
		}))
	}

	// run starts a server; the returned stop ends it and waits until it has returned.
	// run starts a server; stop asks it to end (as SIGTERM does) and done closes when it has.
	run := func(name, dsn, listen string) (stop func(), done chan struct{}) {
		sctx, scancel := context.WithCancel(ctx)
		done = make(chan struct{})
		go func() {
			defer close(done)
			_ = RunServer(sctx, cfg, ServerOptions{Server: ns + "/" + name, Listen: listen, StoreDSN: dsn,
				AllowHTTP: true, MetricsAddr: "0", FeedTick: time.Second, StatusInterval: time.Second, ShutdownDelay: 3 * time.Second})
		}()
		t.Cleanup(func() { scancel(); <-done })
		return scancel, done
	}
	t.Cleanup(cancel)
	storeCondition := func(name string) (*metav1.Condition, error) {
		var fs fedv1.FederationServer
		if err := k.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &fs); err != nil {
			return nil, err
		}
		c := meta.FindStatusCondition(fs.Status.Conditions, fedv1.ConditionStoreReady)
		if c == nil {
			return nil, fmt.Errorf("%s: no StoreReady condition yet", name)
		}
		return c, nil
	}

	// A wrong password: reported with the driver's message, retried, nothing served.
	listen := freeAddr(t, "127.0.0.4")
	stopOne, oneDone := run("one", wrong.String(), listen)
	eventually(t, 30*time.Second, func() error {
		c, err := storeCondition("one")
		if err != nil {
			return err
		}
		if c.Status != metav1.ConditionFalse || c.Reason != fedv1.ReasonStoreUnavailable || !strings.Contains(c.Message, "password authentication failed") {
			return fmt.Errorf("StoreReady = %s/%s %q, want False/%s with the driver's message", c.Status, c.Reason, c.Message, fedv1.ReasonStoreUnavailable)
		}
		if strings.Contains(c.Message, "not-the-password") {
			t.Errorf("the condition shows the password: %q", c.Message)
		}
		return nil
	})
	// Waiting, it is alive (liveness must not restart it) but not ready, and peers are
	// told to come back later.
	for path, want := range map[string]int{"/healthz": http.StatusOK, "/readyz": http.StatusServiceUnavailable, "/inbox": http.StatusServiceUnavailable} {
		resp, err := http.Get("http://" + listen + path)
		must(t, err)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s while waiting for the store: %d, want %d", path, resp.StatusCode, want)
		}
		if want == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "" {
			t.Errorf("GET %s: 503 without Retry-After", path)
		}
	}

	// The Secret is fixed: the same process, still retrying, reads it again, opens,
	// claims the database and serves, without a restart.
	secret.Data["dsn"] = []byte(dsn)
	must(t, k.Update(ctx, secret))
	eventually(t, 30*time.Second, func() error {
		c, err := storeCondition("one")
		if err != nil {
			return err
		}
		if c.Status != metav1.ConditionTrue {
			return fmt.Errorf("StoreReady = %s/%s %q", c.Status, c.Reason, c.Message)
		}
		resp, err := http.Get("http://" + listen + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/readyz: %d", resp.StatusCode)
		}
		return nil
	})

	// Another server on the same database: refused, and says whose it is.
	run("two", wrong.String(), freeAddr(t, "127.0.0.4"))
	eventually(t, 30*time.Second, func() error {
		c, err := storeCondition("two")
		if err != nil {
			return err
		}
		if c.Status != metav1.ConditionFalse || c.Reason != fedv1.ReasonStoreHostMismatch || !strings.Contains(c.Message, "one.fedforge.test") {
			return fmt.Errorf("StoreReady of the second server = %s/%s %q, want False/%s naming the owner", c.Status, c.Reason, c.Message, fedv1.ReasonStoreHostMismatch)
		}
		return nil
	})

	// Told to stop (SIGTERM), server one drains: /readyz answers 503 at once so the
	// Service drops it, while it keeps serving requests for its shutdown delay, then closes.
	stopOne()
	eventually(t, 2*time.Second, func() error {
		resp, err := http.Get("http://" + listen + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			return fmt.Errorf("/readyz while draining: %d, want 503", resp.StatusCode)
		}
		return nil
	})
	resp, err := http.Get("http://" + listen + "/.well-known/nodeinfo")
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("a request while draining: %d, want 200 (still serving)", resp.StatusCode)
	}
	if !resp.Close {
		t.Error("a response while draining keeps the connection alive, want Connection: close (the client's next request must go to a ready replica)")
	}
	select {
	case <-oneDone:
	case <-time.After(30 * time.Second):
		t.Fatal("the server did not stop after its shutdown delay")
	}
	if _, err := http.Get("http://" + listen + "/readyz"); err == nil {
		t.Error("the server still listens after it stopped")
	}
}

// freshSchema creates a throwaway PostgreSQL schema, dropped at cleanup, and returns a
// DSN whose search_path points at it.
func freshSchema(t *testing.T, base string) string {
	admin, err := sql.Open("pgx", base)
	must(t, err)
	t.Cleanup(func() { admin.Close() })
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "app_" + hex.EncodeToString(b)
	if _, err := admin.ExecContext(context.Background(), `CREATE SCHEMA `+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() { _, _ = admin.ExecContext(context.Background(), `DROP SCHEMA `+schema+` CASCADE`) })
	u, err := url.Parse(base)
	must(t, err)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
