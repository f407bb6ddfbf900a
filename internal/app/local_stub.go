//go:build nolocal

package app

import (
	"context"
	"errors"
)

// RunLocal is not in this build: production images are built with -tags nolocal, which
// leaves controller-runtime's envtest (and its init-time writes to /tmp) out of the
// binary. `make run` builds without the tag.
func RunLocal(context.Context, LocalOptions) error {
	return errors.New("fedforge local is not in this build (built with -tags nolocal); use the binary from make build")
}
