package app

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/controllers"
)

// ManagerOptions are the settings of `fedforge manager`.
type ManagerOptions struct {
	MetricsAddr    string
	ProbeAddr      string
	LeaderElection bool
	// LeaderElectionNamespace is where the lease lives when running outside a cluster.
	LeaderElectionNamespace string
	// DefaultServerImage runs FederationServers that name no image.
	DefaultServerImage string
	// LocalMode leaves server workloads out: `make run` runs the server as a process.
	LocalMode bool
}

var skipNameValidation = true

// NewManager builds the controller manager with every Fedforge controller registered.
// The cache holds only the Secrets Fedforge manages, so that a cluster's other Secrets
// never enter the operator's memory.
func NewManager(cfg *rest.Config, o ManagerOptions) (ctrl.Manager, error) {
	managed := labels.SelectorFromSet(labels.Set{fedv1.LabelManagedBy: fedv1.ManagedByValue})
	cfg = withoutClientThrottling(cfg)
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                        Scheme(),
		Metrics:                       metricsserver.Options{BindAddress: o.MetricsAddr},
		HealthProbeBindAddress:        o.ProbeAddr,
		LeaderElection:                o.LeaderElection,
		LeaderElectionID:              "manager.federation.fedforge.dev",
		LeaderElectionNamespace:       o.LeaderElectionNamespace,
		LeaderElectionReleaseOnCancel: true,
		// Controller names stay unique per manager; tests run several managers in one
		// process, which would otherwise collide in the metrics registry check.
		Controller: config.Controller{SkipNameValidation: &skipNameValidation},
		Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
			&corev1.Secret{}: {Label: managed},
		}},
	})
	if err != nil {
		return nil, fmt.Errorf("creating manager: %w", err)
	}
	if err := controllers.SetupIndexes(context.Background(), mgr.GetFieldIndexer()); err != nil {
		return nil, fmt.Errorf("registering indexes: %w", err)
	}
	c := mgr.GetClient()
	setups := []interface{ SetupWithManager(ctrl.Manager) error }{
		&controllers.ActorKeyReconciler{Client: c, APIReader: mgr.GetAPIReader(), Recorder: mgr.GetEventRecorder("fedforge-keys"), Clock: clock.RealClock{}},
		&controllers.FederatedActorReconciler{Client: c, APIReader: mgr.GetAPIReader(), Recorder: mgr.GetEventRecorder("fedforge-manager")},
		&controllers.FederationServerReconciler{Client: c, LocalMode: o.LocalMode, DefaultImage: o.DefaultServerImage},
		&controllers.SubscriptionReconciler{Client: c, Recorder: mgr.GetEventRecorder("fedforge-manager")},
		&controllers.FederationPolicyReconciler{Client: c},
	}
	if !o.LocalMode { // Jobs need a cluster to run them
		setups = append(setups, &controllers.DeliveryJobReconciler{Client: c, DefaultImage: o.DefaultServerImage})
	}
	for _, s := range setups {
		if err := s.SetupWithManager(mgr); err != nil {
			return nil, fmt.Errorf("setting up %T: %w", s, err)
		}
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return nil, err
	}
	return mgr, nil
}
