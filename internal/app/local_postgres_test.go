//go:build !nolocal

package app

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/activitypub"
	"github.com/fedforge/fedforge/internal/store"
)

// lockedBuffer is the banner RunLocal writes, read by the test after RunLocal returned.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// localSamples writes a samples directory with one FederationServer, default/forge, on
// host listen. Not config/samples: its Subscription follows alice@127.0.0.2:8080, which
// would reach whatever `make run --attach` happens to run on this machine.
func localSamples(t *testing.T, listen string) string {
	t.Helper()
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "server.yaml"), []byte(`apiVersion: federation.fedforge.dev/v1alpha1
kind: FederationServer
metadata:
  name: forge
spec:
  host: `+listen+`
  scheme: http
  allowedPrivateCIDRs: [127.0.0.0/8]
`), 0o600))
	return dir
}

// startLocal runs RunLocal (what `make run` runs) with localSamples; stop cancels it and
// returns RunLocal's result.
func startLocal(t *testing.T, o LocalOptions) (stop func() error) {
	t.Helper()
	o.Assets, o.CRDs, o.Samples = assets(t), filepath.Join("..", "..", "config", "crd", "bases"), localSamples(t, o.Listen)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- RunLocal(ctx, o) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() { cancel(); err = <-errc })
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

// localClient is a client of the control plane RunLocal started in dataDir.
func localClient(t *testing.T, dataDir string) client.Client {
	t.Helper()
	var c client.Client
	eventually(t, 60*time.Second, func() error {
		cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(dataDir, "kubeconfig"))
		if err != nil {
			return err
		}
		c, err = client.New(cfg, client.Options{Scheme: Scheme()})
		return err
	})
	return c
}

// deliverNote signs a Create{Note} as the peer's alice and POSTs it to the local server's
// shared inbox, until it is answered 202: before the server has opened its store it
// answers 503.
func deliverNote(t *testing.T, tp *ticketPeer, listen, id string) {
	t.Helper()
	alice := tp.actor("alice")
	body := []byte(fmt.Sprintf(`{"@context":%q,"id":%q,"type":"Create","actor":%q,"to":["https://www.w3.org/ns/activitystreams#Public"],`+
		`"object":{"id":%q,"type":"Note","attributedTo":%q,"content":"hello from a peer"}}`,
		activitypub.ActivityStreamsContext, id, alice, id+"/note", alice))
	eventually(t, 120*time.Second, func() error {
		req, err := http.NewRequest(http.MethodPost, "http://"+listen+"/inbox", bytes.NewReader(body))
		must(t, err)
		req.Header.Set("Content-Type", "application/activity+json")
		signer(t, body, tp.keys["alice"], alice+"#main-key", time.Now())(req)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err // not listening yet
		}
		defer resp.Body.Close()
		msg, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusAccepted {
			return fmt.Errorf("POST /inbox: %d %s", resp.StatusCode, msg)
		}
		return nil
	})
}

// TestLocalModeOnPostgres runs `fedforge local --postgres-dsn` (RunLocal, with a real
// kube-apiserver and a real PostgreSQL): the sample FederationServer
// gets a DSN Secret and spec.storage.postgres, a signed activity it answers 202 is a row
// of the received log in PostgreSQL, and no SQLite file is made. The banner names the
// store without the password. Run again without the flag, on the same data, the server
// is back on SQLite: the storage and the Secret holding the password are gone.
func TestLocalModeOnPostgres(t *testing.T) {
	t.Parallel()
	base := os.Getenv("FEDFORGE_TEST_POSTGRES_DSN")
	if base == "" {
		t.Fatal("FEDFORGE_TEST_POSTGRES_DSN is not set: run `export FEDFORGE_TEST_POSTGRES_DSN=\"$(hack/test-postgres.sh)\"` (make test does)")
	}
	setTestLogger()
	dsn := freshSchema(t, base)
	u, err := url.Parse(dsn)
	must(t, err)
	password, _ := u.User.Password()
	tp := newTicketPeer(t)
	dataDir, listen := t.TempDir(), freeAddr(t, "127.0.0.7")
	out := &lockedBuffer{}
	stop := startLocal(t, LocalOptions{DataDir: dataDir, Listen: listen, Resolve: []string{tp.host + "=" + tp.addr},
		PostgresDSN: dsn, Out: out})

	id := tp.actor("alice") + "/notes/local-postgres-1"
	deliverNote(t, tp, listen, id)
	db, err := sql.Open("pgx", dsn)
	must(t, err)
	defer db.Close()
	var n int
	must(t, db.QueryRowContext(context.Background(), `SELECT count(*) FROM received WHERE id = $1`, id).Scan(&n))
	if n != 1 {
		t.Errorf("received rows in PostgreSQL for %s: %d, want 1 (answered 202, so it is committed)", id, n)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "fedforge.db")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a SQLite file in the data directory (stat: %v): the server must use PostgreSQL only", err)
	}
	k := localClient(t, dataDir)
	key := types.NamespacedName{Namespace: "default", Name: "forge"}
	var fs fedv1.FederationServer
	must(t, k.Get(context.Background(), key, &fs))
	if st := fs.Spec.Storage; st == nil || st.Postgres == nil || st.Postgres.DSNSecretRef.Name != "forge-local-postgres" {
		t.Errorf("spec.storage = %+v, want postgres with dsnSecretRef forge-local-postgres", st)
	}
	var secret corev1.Secret
	must(t, k.Get(context.Background(), types.NamespacedName{Namespace: "default", Name: "forge-local-postgres"}, &secret))
	if string(secret.Data["dsn"]) != dsn {
		t.Errorf("the Secret's dsn is not the DSN given")
	}
	must(t, stop())
	banner := out.String()
	if !strings.Contains(banner, "Store: PostgreSQL, "+u.Redacted()) {
		t.Errorf("the banner does not name the PostgreSQL store:\n%s", banner)
	}
	if strings.Contains(banner, password) {
		t.Errorf("the banner shows the DSN's password:\n%s", banner)
	}

	// Without the flag, on the same data directory: SQLite, and nothing left of the DSN.
	stop = startLocal(t, LocalOptions{DataDir: dataDir, Listen: listen, Resolve: []string{tp.host + "=" + tp.addr}, Out: &lockedBuffer{}})
	deliverNote(t, tp, listen, tp.actor("alice")+"/notes/local-sqlite-1")
	k = localClient(t, dataDir)
	must(t, k.Get(context.Background(), key, &fs))
	if fs.Spec.Storage != nil {
		t.Errorf("spec.storage = %+v after a run without --postgres-dsn, want none (SQLite)", fs.Spec.Storage)
	}
	if err := k.Get(context.Background(), types.NamespacedName{Namespace: "default", Name: "forge-local-postgres"}, &secret); !apierrors.IsNotFound(err) {
		t.Errorf("the DSN Secret after a run without --postgres-dsn: %v, want NotFound", err)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "fedforge.db")); err != nil {
		t.Errorf("no SQLite file after a run without --postgres-dsn: %v", err)
	}
	must(t, stop())
}

// TestLocalModeRefusesBadPostgresDSN: a DSN that cannot serve is refused when `fedforge
// local` starts, with an error naming the problem and never the password, instead of a
// server on SQLite or one waiting for its database. All but a database claimed by
// another server are refused before the control plane starts (no etcd data made).
func TestLocalModeRefusesBadPostgresDSN(t *testing.T) {
	t.Parallel()
	base := os.Getenv("FEDFORGE_TEST_POSTGRES_DSN")
	if base == "" {
		t.Fatal("FEDFORGE_TEST_POSTGRES_DSN is not set: run `export FEDFORGE_TEST_POSTGRES_DSN=\"$(hack/test-postgres.sh)\"` (make test does)")
	}
	setTestLogger()
	good, err := url.Parse(base)
	must(t, err)
	with := func(change func(u *url.URL)) string {
		u := *good
		change(&u)
		return u.String()
	}
	claimed := freshSchema(t, base)
	st, err := store.Open(context.Background(), claimed)
	must(t, err)
	must(t, st.ClaimHost(context.Background(), "another.example"))
	must(t, st.Close())

	tests := map[string]struct {
		dsn, want, secret string
		started           bool // refused after the control plane started
	}{
		"wrong password": {dsn: with(func(u *url.URL) { u.User = url.UserPassword(u.User.Username(), "Wr0ng-Secret-pw") }),
			want: "password authentication failed", secret: "Wr0ng-Secret-pw"},
		"nothing listens": {dsn: with(func(u *url.URL) {
			u.User = url.UserPassword("fedforge", "Unreached-pw")
			u.Host = freeAddr(t, "127.0.0.1")
		}),
			want: "connection refused", secret: "Unreached-pw"},
		"not a postgres URL": {dsn: "sqlite:///tmp/fedforge.db", want: "must be a postgres:// or postgresql:// URL"},
		"keyword form":       {dsn: "host=127.0.0.1 password=Kw-secret-pw", want: "must be a postgres:// or postgresql:// URL", secret: "Kw-secret-pw"},
		"bad port":           {dsn: "postgres://u:Port-secret-pw@127.0.0.1:nope/db", want: "not a valid URL", secret: "Port-secret-pw"},
		"no such database": {dsn: with(func(u *url.URL) { u.Path = "/no_such_database_here" }),
			want: `database "no_such_database_here" does not exist`},
		"claimed by another server": {dsn: claimed, want: "belongs to another server", started: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dataDir := t.TempDir()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			listen := freeAddr(t, "127.0.0.7")
			err := RunLocal(ctx, LocalOptions{Assets: assets(t), DataDir: dataDir, CRDs: filepath.Join("..", "..", "config", "crd", "bases"),
				Samples: localSamples(t, listen), Listen: listen, PostgresDSN: tc.dsn, Out: &lockedBuffer{}})
			if err == nil || ctx.Err() != nil {
				t.Fatalf("RunLocal = %v (context: %v), want it refused at start", err, ctx.Err())
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "--postgres-dsn") {
				t.Errorf("error %q, want it to name --postgres-dsn and %q", err, tc.want)
			}
			if pw, _ := good.User.Password(); strings.Contains(err.Error(), pw) || (tc.secret != "" && strings.Contains(err.Error(), tc.secret)) {
				t.Errorf("the error shows a password: %q", err)
			}
			_, serr := os.Stat(filepath.Join(dataDir, "etcd"))
			if started := serr == nil; started != tc.started {
				t.Errorf("control plane started before the refusal: %v, want %v", started, tc.started)
			}
			if _, err := os.Stat(filepath.Join(dataDir, "fedforge.db")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a SQLite file was made (stat: %v): no fallback to SQLite", err)
			}
		})
	}
}
