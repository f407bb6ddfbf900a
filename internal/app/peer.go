package app

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
)

// LocalOptions configure `fedforge local`, the command behind `make run`.
type LocalOptions struct {
	// Assets is the directory holding etcd and kube-apiserver (hack/envtest-binaries.sh).
	Assets string
	// DataDir keeps etcd's data and the kubeconfig between runs.
	DataDir string
	// CRDs is the directory of CRD manifests to install.
	CRDs string
	// Samples is the directory of manifests applied after start; empty applies none.
	Samples string
	// Server is namespace/name of the FederationServer to serve; the first one among the
	// samples when empty.
	Server string
	// Listen is the server's address.
	Listen string
	// Resolve maps host[:port]=ip[:port] for the server's outbound requests.
	Resolve []string
	// PostgresDSN, when set, puts the served FederationServer's store on this PostgreSQL
	// database (a postgres:// URL) instead of a SQLite file in DataDir (local_postgres.go).
	PostgresDSN string
	// Out receives the instructions for the person who ran the command.
	Out io.Writer
}

// serveSamples applies the samples, then serves the FederationServer target (or the
// first one among the samples) on listen, with its store in dataDir. The server's
// result goes to errc.
func serveSamples(ctx context.Context, cfg *rest.Config, c client.Client, samples, target, listen, dataDir string, resolve []string, errc chan<- error) (string, error) {
	first := ""
	var err error
	if samples != "" {
		if first, err = applyDir(ctx, c, samples); err != nil {
			return "", err
		}
	}
	if target == "" {
		target = first
	}
	ns, name, ok := strings.Cut(target, "/")
	if !ok || ns == "" || name == "" {
		return "", errors.New("local: no FederationServer to serve: pass --server namespace/name or a samples directory with one")
	}
	var fs fedv1.FederationServer
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &fs); err != nil {
		return "", fmt.Errorf("local: reading FederationServer %s: %w", target, err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", err
	}
	dbPath, err := filepath.Abs(filepath.Join(dataDir, "fedforge.db"))
	if err != nil {
		return "", err
	}
	so := ServerOptions{
		Server: target, Listen: listen, StoreDSN: "sqlite://" + dbPath, PublicHost: fs.Spec.Host,
		AllowedCIDRs: fs.Spec.AllowedPrivateCIDRs, AllowHTTP: fs.Spec.Scheme == fedv1.SchemeHTTP,
		Resolve: resolve, MetricsAddr: "0",
	}
	go func() { errc <- RunServer(ctx, cfg, so) }()
	return target, nil
}

// PeerOptions configure `fedforge local --attach`: a second instance beside `make run`,
// using its control plane (and its manager) instead of starting another.
type PeerOptions struct {
	// Kubeconfig is the local control plane's kubeconfig (.local/run/kubeconfig).
	Kubeconfig string
	// Samples are the peer's manifests (config/samples/peer).
	Samples string
	// Server is namespace/name to serve; the first FederationServer of Samples when empty.
	Server string
	// Listen is the peer's address, such as 127.0.0.2:8080.
	Listen string
	// DataDir keeps the peer's store.
	DataDir string
	// Resolve maps host[:port]=ip[:port] for outbound requests.
	Resolve []string
	// Out receives the instructions.
	Out io.Writer
}

// RunPeer applies the peer's samples to the running local control plane and serves its
// FederationServer until ctx ends. The manager of `make run` generates its keys.
func RunPeer(ctx context.Context, o PeerOptions) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", o.Kubeconfig)
	if err != nil {
		return fmt.Errorf("peer: reading %s (is make run running?): %w", o.Kubeconfig, err)
	}
	c, err := client.New(cfg, client.Options{Scheme: Scheme()})
	if err != nil {
		return err
	}
	errc := make(chan error, 1)
	target, err := serveSamples(ctx, cfg, c, o.Samples, o.Server, o.Listen, o.DataDir, o.Resolve, errc)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "\nA second instance is running: FederationServer %s on http://%s\nPress Ctrl-C to stop it.\n", target, o.Listen)
	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		return err
	}
}

// applyDir server-side-applies every manifest in dir (files sorted by name, kustomization
// files skipped) and returns namespace/name of the first FederationServer among them.
func applyDir(ctx context.Context, c client.Client, dir string) (string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return "", err
	}
	sort.Strings(files)
	first := ""
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
		for {
			doc, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return "", fmt.Errorf("%s: %w", f, err)
			}
			u := &unstructured.Unstructured{}
			if err := utilyaml.Unmarshal(doc, &u.Object); err != nil {
				return "", fmt.Errorf("%s: %w", f, err)
			}
			if len(u.Object) == 0 {
				continue
			}
			if u.GetNamespace() == "" {
				u.SetNamespace("default")
			}
			if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner("fedforge-local"), client.ForceOwnership); err != nil {
				return "", fmt.Errorf("applying %s %s from %s: %w", u.GetKind(), u.GetName(), f, err)
			}
			if u.GetKind() == "FederationServer" && first == "" {
				first = u.GetNamespace() + "/" + u.GetName()
			}
		}
	}
	return first, nil
}
