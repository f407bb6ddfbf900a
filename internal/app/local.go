//go:build !nolocal

package app

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/fedforge/fedforge/internal/store"
)

// localStopWait bounds how long RunLocal waits for the manager and the server to end
// before it stops the control plane.
const localStopWait = 30 * time.Second

// RunLocal starts a real etcd and kube-apiserver (the envtest control plane, with its data
// kept in DataDir), installs the CRDs, runs the manager in local mode and one server
// process, and applies the samples. The server's store is a SQLite file in DataDir, or
// the PostgreSQL database of PostgresDSN (checked before anything starts, refused with
// the reason when it does not connect). It returns when ctx ends, after stopping everything.
func RunLocal(ctx context.Context, o LocalOptions) (err error) {
	log := logf.FromContext(ctx)
	var pg store.Store
	if o.PostgresDSN != "" {
		// Checked before the control plane starts: a bad DSN is refused at once.
		if pg, err = openLocalPostgres(ctx, o.PostgresDSN); err != nil {
			return err
		}
		defer func() {
			if pg != nil {
				pg.Close()
			}
		}()
	}
	if err := os.MkdirAll(filepath.Join(o.DataDir, "etcd"), 0o700); err != nil {
		return err
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory: o.Assets,
		CRDDirectoryPaths:     []string{o.CRDs},
		ErrorIfCRDPathMissing: true,
	}
	env.ControlPlane.Etcd = &envtest.Etcd{DataDir: filepath.Join(o.DataDir, "etcd")}
	log.Info("starting etcd and kube-apiserver", "assets", o.Assets, "data", o.DataDir)
	cfg, err := env.Start()
	if err != nil {
		return fmt.Errorf("starting the local control plane: %w", err)
	}
	defer func() {
		if serr := env.Stop(); serr != nil && err == nil {
			err = serr
		}
	}()

	user, err := env.AddUser(envtest.User{Name: "fedforge-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("creating the admin user: %w", err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		return err
	}
	kcPath, err := filepath.Abs(filepath.Join(o.DataDir, "kubeconfig"))
	if err != nil {
		return err
	}
	if err := os.WriteFile(kcPath, kubeconfig, 0o600); err != nil {
		return err
	}

	mgr, err := NewManager(cfg, ManagerOptions{MetricsAddr: "0", ProbeAddr: "0", LocalMode: true})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 2)
	running := 0 // goroutines that will send to errc
	defer func() {
		// Runs before env.Stop: the manager and the server end their watches and requests
		// first, because kube-apiserver waits for open requests when asked to stop, and
		// envtest kills one that takes over 20 s and reports it as RunLocal's error.
		cancel()
		wait := time.After(localStopWait)
		for ; running > 0; running-- {
			select {
			case <-errc:
			case <-wait:
				return
			}
		}
	}()
	go func() { errc <- mgr.Start(ctx) }()
	running++

	c, err := client.New(cfg, client.Options{Scheme: Scheme()})
	if err != nil {
		return err
	}
	target, storeDesc, err := localTarget(ctx, c, o, pg)
	if err != nil {
		return err
	}
	if pg != nil { // checked and claimed; the server opens its own
		pg.Close()
		pg = nil
	}
	if _, err := serveSamples(ctx, cfg, c, "", target, o.Listen, o.DataDir, o.Resolve, errc); err != nil {
		return err
	}
	running++

	fmt.Fprintf(o.Out, `
Fedforge is running locally.
  API server kubeconfig: %[1]s
  FederationServer %[2]s is served on http://%[3]s (health: http://%[3]s/healthz)
  Store: %[5]s

From another terminal:
  export KUBECONFIG=%[1]s
  kubectl get federation
  kubectl get federatedactors
  kubectl get subscriptions

A second instance to federate with (alice on 127.0.0.2:8080; see the README):
  bin/fedforge local --attach %[1]s --samples config/samples/peer --listen 127.0.0.2:8080 --data-dir .local/peer

Press Ctrl-C to stop; the data in %[4]s is kept for the next run.
`, kcPath, target, o.Listen, o.DataDir, storeDesc)

	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		running--
		return err
	}
}

// localTarget applies the samples, picks the FederationServer to serve (--server, or the
// first one among the samples) and chooses its store: PostgreSQL when pg is open
// (--postgres-dsn), otherwise the SQLite file in DataDir, withdrawing what an earlier
// run with --postgres-dsn set. It returns namespace/name and a line naming the store.
func localTarget(ctx context.Context, c client.Client, o LocalOptions, pg store.Store) (target, desc string, err error) {
	first := ""
	if o.Samples != "" {
		if first, err = applyDir(ctx, c, o.Samples); err != nil {
			return "", "", err
		}
	}
	target = o.Server
	if target == "" {
		target = first
	}
	ns, name, ok := strings.Cut(target, "/")
	if !ok || ns == "" || name == "" {
		return "", "", errors.New("local: no FederationServer to serve: pass --server namespace/name or a samples directory with one")
	}
	key := types.NamespacedName{Namespace: ns, Name: name}
	if pg == nil {
		if err := dropLocalPostgres(ctx, c, key); err != nil {
			return "", "", err
		}
		return target, "SQLite, " + filepath.Join(o.DataDir, "fedforge.db"), nil
	}
	if err := claimLocalPostgres(ctx, c, pg, key, o.PostgresDSN); err != nil {
		return "", "", err
	}
	u, _ := url.Parse(o.PostgresDSN)
	logf.FromContext(ctx).Info("the server's store is PostgreSQL", "dsn", u.Redacted(), "secret", ns+"/"+localDSNSecret(name))
	return target, fmt.Sprintf("PostgreSQL, %s (DSN in Secret %s/%s)", u.Redacted(), ns, localDSNSecret(name)), nil
}
