package server

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
)

// The inbox evaluates the policies on every POST. Listing the FederationPolicies from
// the cache, sorting them and building their version string each time was 3-4 % of a
// POST's CPU (issue 17); now the compiled set is kept until the informer reports a
// change of any FederationPolicy or ConfigMap (a blocklist) in the namespace.
//
// The Enforced condition's promise, that a request evaluated after the condition says
// generation N uses N, holds: policyEnforcement invalidates before it loads, so the
// set it checks and installs comes from a List made after the cache held N, and a
// request uses a kept set only when it was built at the current epoch (no event, no
// invalidation since its List began). An informer event arrives after the cache was
// updated, so between the two a request may still use the older set: that is the
// same delay as the watch's own, and the condition is written only after the
// reconciler's load.

// watch registers the invalidating handler on the FederationPolicy informer; until it
// succeeded, every evaluation lists (current falls back to load). ConfigMaps are
// watched only once a policy names a blocklist (watchBlocklists): the cache holds
// ConfigMaps only from then on, as it did when load's Get created their informer.
func (p *policies) watch(ctx context.Context, c cache.Cache) error {
	if err := p.watchKind(ctx, c, &fedv1.FederationPolicy{}); err != nil {
		return err
	}
	p.informers = c
	p.watched.Store(true)
	return nil
}

// watchBlocklists registers the handler on the ConfigMap informer, once.
func (p *policies) watchBlocklists(ctx context.Context) {
	p.cmOnce.Do(func() {
		if p.informers == nil {
			return
		}
		if err := p.watchKind(ctx, p.informers, &corev1.ConfigMap{}); err != nil {
			return // the kept set is not used (blocklistsWatched stays false): every POST lists
		}
		p.blocklistsWatched.Store(true)
	})
}

func (p *policies) watchKind(ctx context.Context, c cache.Cache, obj client.Object) error {
	inf, err := c.GetInformer(ctx, obj)
	if err != nil {
		return fmt.Errorf("informer of %T: %w", obj, err)
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { p.invalidate() },
		UpdateFunc: func(any, any) { p.invalidate() },
		DeleteFunc: func(any) { p.invalidate() },
	}); err != nil {
		return fmt.Errorf("watching %T: %w", obj, err)
	}
	return nil
}

// invalidate makes the next evaluation list and compile again.
func (p *policies) invalidate() { p.epoch.Add(1) }

// current returns the compiled policies: the kept set when nothing changed since it
// was built, otherwise a fresh load.
func (p *policies) current(ctx context.Context) ([]compiledPolicy, error) {
	if p.watched.Load() {
		e := p.epoch.Load()
		p.mu.Lock()
		cs, at, blocklists := p.compiled, p.compiledAt, p.blocklists
		p.mu.Unlock()
		if cs != nil && at == e && (!blocklists || p.blocklistsWatched.Load()) {
			return cs, nil
		}
	}
	return p.load(ctx)
}
