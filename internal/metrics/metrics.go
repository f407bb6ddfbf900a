// Package metrics holds the Prometheus helpers shared by the components that register
// their own collectors (the webhook handler, the outbox, the feed poller).
package metrics

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// RegisterCounter registers c, or returns the collector already registered under the
// same name, so that building a second handler or poller (tests, restarts of a component) works.
func RegisterCounter(reg prometheus.Registerer, c *prometheus.CounterVec) (*prometheus.CounterVec, error) {
	if reg == nil {
		return c, nil
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				return existing, nil
			}
		}
		return nil, fmt.Errorf("metrics: registering: %w", err)
	}
	return c, nil
}

// Register registers c, or returns the collector of the same type already registered
// under the same descriptors (a second server in one process, a restarted component),
// so that each metric is exported once whatever the number of constructions.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if reg == nil {
		return c, nil
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		var zero C
		return zero, fmt.Errorf("metrics: registering: %w", err)
	}
	return c, nil
}
