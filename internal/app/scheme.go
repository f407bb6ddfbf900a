// Package app wires Fedforge's subcommands (manager, server, deliver, local) from the
// packages that do the work, so that cmd/manager stays a thin flag parser.
package app

import (
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
)

// Scheme knows the built-in kinds and Fedforge's own.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(fedv1.AddToScheme(s))
	return s
}
