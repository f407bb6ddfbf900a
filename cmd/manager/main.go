/*
Copyright 2026 The Fedforge Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

// Command fedforge is the one Fedforge binary: `fedforge manager` runs the controllers,
// `fedforge server` the inbox/outbox server of one FederationServer, `fedforge deliver`
// a delivery Job, and `fedforge local` everything on this machine (make run).
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/fedforge/fedforge/internal/app"
	"github.com/fedforge/fedforge/internal/version"
)

const usage = `fedforge puts software forges on the Fediverse.

Usage: fedforge <command> [flags]

Commands:
  manager   run the operator's controllers
  server    serve one FederationServer (--server namespace/name)
  deliver   run a delivery Job
  local     run etcd, kube-apiserver, the manager and a server on this machine (make run)
  signatures  list the signature profile of each peer host (--store, or FEDFORGE_STORE_DSN)
  lookup    fetch and print a remote actor or object: fedforge lookup <url|acct:user@host>
  version   print the version
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	cmd, args := os.Args[1], os.Args[2:]
	fs := flag.NewFlagSet("fedforge "+cmd, flag.ExitOnError)
	zopts := zap.Options{}
	zopts.BindFlags(fs)
	pprofAddr := fs.String("pprof-bind-address", "", "loopback address to serve Go's runtime profiles (/debug/pprof/) on; empty disables it")
	var run func() error
	switch cmd {
	case "manager":
		o := app.ManagerOptions{}
		fs.StringVar(&o.MetricsAddr, "metrics-bind-address", ":8443", "address of the metrics endpoint; 0 disables it")
		fs.StringVar(&o.ProbeAddr, "health-probe-bind-address", ":8081", "address of /healthz and /readyz")
		fs.BoolVar(&o.LeaderElection, "leader-elect", false, "elect a leader, so that only one manager replica reconciles")
		fs.StringVar(&o.LeaderElectionNamespace, "leader-election-namespace", "", "namespace of the leader lease when outside a cluster")
		fs.StringVar(&o.DefaultServerImage, "server-image", envOr("FEDFORGE_SERVER_IMAGE", "fedforge:dev"), "image of server workloads whose spec names none")
		fs.BoolVar(&o.LocalMode, "local", false, "do not create server workloads; servers run as local processes")
		config.RegisterFlags(fs)
		run = func() error {
			mgr, err := app.NewManager(ctrl.GetConfigOrDie(), o)
			if err != nil {
				return err
			}
			return mgr.Start(ctrl.SetupSignalHandler())
		}
	case "server":
		o := app.ServerOptions{}
		var cidrs, resolve stringList
		fs.StringVar(&o.Server, "server", "", "the FederationServer to serve, as namespace/name")
		fs.StringVar(&o.Listen, "listen", ":8080", "address to listen on")
		fs.StringVar(&o.PublicHost, "public-host", "", "the FederationServer's public host (spec.host), named in the User-Agent")
		fs.StringVar(&o.StoreDSN, "store", os.Getenv("FEDFORGE_STORE_DSN"), "store DSN: sqlite:///path/fedforge.db or postgres://...")
		fs.Var(&cidrs, "allowed-cidr", "private CIDR peers may live in (repeatable; the FederationServer's allowedPrivateCIDRs)")
		fs.BoolVar(&o.AllowHTTP, "allow-http", false, "reach peers over plain http (local and test setups)")
		fs.Var(&resolve, "resolve", "host[:port]=ip[:port] for outbound requests (repeatable), to run instances with real names on 127.0.0.x")
		fs.BoolVar(&o.LeaderElection, "leader-elect", false, "run the exchanges on one replica only")
		fs.StringVar(&o.MetricsAddr, "metrics-bind-address", "0", "address of the Prometheus metrics endpoint; 0 disables it")
		fs.DurationVar(&o.DeliveryLease, "delivery-lease", 0, "how long a worker owns the delivery rows it took (spec.delivery.lease; default 5m, at least 90s)")
		fs.DurationVar(&o.ShutdownDelay, "shutdown-delay", 0, "keep serving this long after SIGTERM with /readyz at 503, so endpoints drop the replica first (the operator sets 5s)")
		inProcess := fs.Bool("in-process-delivery", true, "deliver in this process; false leaves every delivery to delivery Jobs")
		fs.StringVar(&o.InternalListen, "internal-listen", "", "address of the delivery queue endpoint for delivery Jobs (token in FEDFORGE_DELIVERY_TOKEN); empty disables it")
		config.RegisterFlags(fs)
		run = func() error {
			o.AllowedCIDRs, o.Resolve = cidrs, resolve
			o.DeliveryToken = os.Getenv("FEDFORGE_DELIVERY_TOKEN")
			o.NoInProcessDelivery = !*inProcess
			return app.RunServer(ctrl.SetupSignalHandler(), ctrl.GetConfigOrDie(), o)
		}
	case "local":
		o := app.LocalOptions{Out: os.Stdout}
		fs.StringVar(&o.Assets, "assets", os.Getenv("KUBEBUILDER_ASSETS"), "directory with etcd and kube-apiserver (hack/envtest-binaries.sh prints it)")
		fs.StringVar(&o.DataDir, "data-dir", ".local/run", "where etcd data and the kubeconfig are kept between runs")
		fs.StringVar(&o.CRDs, "crds", "config/crd/bases", "directory of CRD manifests")
		fs.StringVar(&o.Samples, "samples", "config/samples", "directory of manifests to apply; empty for none")
		fs.StringVar(&o.Server, "server", "", "FederationServer to serve as namespace/name; the first sample when empty")
		fs.StringVar(&o.Listen, "listen", "127.0.0.1:8080", "address of the server")
		var resolve stringList
		fs.Var(&resolve, "resolve", "host[:port]=ip[:port] for the server's outbound requests (repeatable)")
		fs.StringVar(&o.PostgresDSN, "postgres-dsn", "",
			"serve the FederationServer on this PostgreSQL database (postgres://user:password@host:port/db) instead of SQLite in --data-dir; "+
				"checked at start, kept in a Secret <server>-local-postgres and named in spec.storage.postgres. "+
				"When empty, $FEDFORGE_POSTGRES_DSN, which keeps the password out of the process list (and out of this help)")
		var attach string
		fs.StringVar(&attach, "attach", "", "kubeconfig of a running `make run`: serve a second instance (--samples config/samples/peer) beside it instead of starting a control plane")
		run = func() error {
			o.Resolve = resolve
			if o.PostgresDSN == "" {
				o.PostgresDSN = os.Getenv("FEDFORGE_POSTGRES_DSN")
			}
			if attach != "" {
				if o.PostgresDSN != "" {
					return fmt.Errorf("local: --postgres-dsn applies to the first instance; it is not taken with --attach (unset FEDFORGE_POSTGRES_DSN)")
				}
				return app.RunPeer(ctrl.SetupSignalHandler(), app.PeerOptions{Kubeconfig: attach, Samples: o.Samples, Server: o.Server,
					Listen: o.Listen, DataDir: o.DataDir, Resolve: resolve, Out: o.Out})
			}
			return app.RunLocal(ctrl.SetupSignalHandler(), o)
		}
	case "deliver":
		o := app.DeliverOptions{Token: os.Getenv("FEDFORGE_DELIVERY_TOKEN")}
		var cidrs, resolve, actors stringList
		fs.StringVar(&o.QueueURL, "queue-url", "", "the server's delivery queue endpoint, http://<server>-server.<ns>.svc:8081/internal/delivery")
		fs.StringVar(&o.StoreDSN, "store", "", "lease from this PostgreSQL store instead of --queue-url")
		fs.StringVar(&o.PublicHost, "public-host", "", "the FederationServer's public host (spec.host), named in the User-Agent")
		fs.StringVar(&o.KeysDir, "keys-dir", "/var/run/fedforge/keys", "where the actors' key Secrets are mounted")
		fs.Var(&actors, "actor", "actorID=dir: an actor whose key Secret is mounted at keys-dir/dir (repeatable)")
		fs.Var(&cidrs, "allowed-cidr", "private CIDR peers may live in (repeatable)")
		fs.BoolVar(&o.AllowHTTP, "allow-http", false, "reach peers over plain http")
		fs.Var(&resolve, "resolve", "host[:port]=ip[:port] for outbound requests (repeatable)")
		fs.DurationVar(&o.MaxDuration, "max-duration", 10*time.Minute, "stop after this long; what is left stays queued")
		run = func() error {
			o.Actors, o.AllowedCIDRs, o.Resolve = actors, cidrs, resolve
			return app.RunDeliver(ctrl.SetupSignalHandler(), o)
		}
	case "signatures":
		dsn := fs.String("store", os.Getenv("FEDFORGE_STORE_DSN"), "store DSN: sqlite:///path/fedforge.db or postgres://...")
		run = func() error { return app.ListSignatures(ctrl.SetupSignalHandler(), *dsn, os.Stdout) }
	case "lookup":
		o := app.LookupOptions{}
		var cidrs, resolve stringList
		fs.Var(&cidrs, "allowed-cidr", "private CIDR the peer may live in (repeatable)")
		fs.BoolVar(&o.AllowHTTP, "allow-http", false, "reach the peer over plain http")
		fs.Var(&resolve, "resolve", "host[:port]=ip[:port] for outbound requests (repeatable)")
		run = func() error {
			if fs.NArg() != 1 {
				return fmt.Errorf("usage: fedforge lookup [flags] <url|acct:user@host>")
			}
			o.Target, o.AllowedCIDRs, o.Resolve = fs.Arg(0), cidrs, resolve
			return app.Lookup(ctrl.SetupSignalHandler(), o, os.Stdout)
		}
	case "version":
		fmt.Println(version.Version)
		return
	case "-h", "--help", "help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "fedforge: unknown command %q\n\n%s", cmd, usage)
		os.Exit(2)
	}
	_ = fs.Parse(args)
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zopts)))
	if *pprofAddr != "" {
		if err := servePprof(*pprofAddr); err != nil {
			ctrl.Log.Error(err, "fedforge "+cmd+" failed")
			os.Exit(2)
		}
	}
	if err := run(); err != nil {
		ctrl.Log.Error(err, "fedforge "+cmd+" failed")
		os.Exit(1)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }
