//go:build !nolocal

package app

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
)

// RunLocal starts a real etcd and kube-apiserver (the envtest control plane, with its data
// kept in DataDir), installs the CRDs, runs the manager in local mode and one server
// process, and applies the samples. It returns when ctx ends, after stopping everything.
func RunLocal(ctx context.Context, o LocalOptions) (err error) {
	log := logf.FromContext(ctx)
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
	defer cancel()
	errc := make(chan error, 2)
	go func() { errc <- mgr.Start(ctx) }()

	c, err := client.New(cfg, client.Options{Scheme: Scheme()})
	if err != nil {
		return err
	}
	target, err := serveSamples(ctx, cfg, c, o.Samples, o.Server, o.Listen, o.DataDir, o.Resolve, errc)
	if err != nil {
		return err
	}

	fmt.Fprintf(o.Out, `
Fedforge is running locally.
  API server kubeconfig: %[1]s
  FederationServer %[2]s is served on http://%[3]s (health: http://%[3]s/healthz)

From another terminal:
  export KUBECONFIG=%[1]s
  kubectl get federation
  kubectl get federatedactors
  kubectl get subscriptions

A second instance to federate with (alice on 127.0.0.2:8080; see the README):
  bin/fedforge local --attach %[1]s --samples config/samples/peer --listen 127.0.0.2:8080 --data-dir .local/peer

Press Ctrl-C to stop; the data in %[4]s is kept for the next run.
`, kcPath, target, o.Listen, o.DataDir)

	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		return err
	}
}
