package server

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/store"
)

// countingReader is the server's cache with its Lists counted.
type countingReader struct {
	client.Reader
	lists atomic.Int64
}

func (r *countingReader) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	r.lists.Add(1)
	return r.Reader.List(ctx, list, opts...)
}

// TestPolicyCache: the inbox keeps the compiled policies between POSTs and lists again
// only after the informer reports a change; once the Enforced condition names a
// generation, the very next evaluation uses it (the condition's promise).
func TestPolicyCache(t *testing.T) {
	cfg, k, scheme, ctx := startAPIServer(t, true)
	st, err := store.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "fedforge.db"))
	must(t, err)
	t.Cleanup(func() { _ = st.Close() })
	srv, err := New(Options{Server: types.NamespacedName{Namespace: testNS, Name: "main"}, Config: cfg, Scheme: scheme, Store: st})
	must(t, err)
	reader := &countingReader{Reader: srv.fed.policies.reader}
	srv.fed.policies.reader = reader
	go func() { _ = srv.Run(ctx, nil) }()
	if !srv.cache.WaitForCacheSync(ctx) {
		t.Fatal("cache did not sync")
	}
	p := srv.fed.policies
	allowed := func() bool {
		v, err := p.evaluate(ctx, "peer.example")
		must(t, err)
		return v.allowed
	}
	enforced := func(pol *fedv1.FederationPolicy) {
		eventually(t, func() error {
			must(t, k.Get(ctx, client.ObjectKeyFromObject(pol), pol))
			c := meta.FindStatusCondition(pol.Status.Conditions, fedv1.ConditionEnforced)
			if c == nil || c.Status != metav1.ConditionTrue || c.ObservedGeneration != pol.Generation {
				return fmt.Errorf("generation %d: Enforced is %+v", pol.Generation, c)
			}
			return nil
		})
	}

	if !allowed() {
		t.Fatal("no policy: peer.example refused")
	}
	lists := reader.lists.Load()
	for range 10 {
		allowed()
	}
	if n := reader.lists.Load() - lists; n != 0 {
		t.Errorf("10 evaluations without a change listed %d times, want 0", n)
	}

	pol := &fedv1.FederationPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: "deny"},
		Spec: fedv1.FederationPolicySpec{TargetRef: fedv1.LocalObjectReference{Name: "main"}, Mode: fedv1.PolicyDenylist, Hosts: []string{"peer.example"}}}
	must(t, k.Create(ctx, pol))
	enforced(pol)
	if allowed() {
		t.Error("the denylist is Enforced, but peer.example is still allowed")
	}
	pol.Spec.Hosts = []string{"other.example"}
	must(t, k.Update(ctx, pol))
	enforced(pol)
	if !allowed() {
		t.Errorf("generation %d (peer.example no longer listed) is Enforced, but peer.example is still refused", pol.Generation)
	}
	// The next change is picked up from the informer's event alone (no reconcile).
	lists = reader.lists.Load()
	must(t, k.Delete(ctx, pol))
	eventually(t, func() error {
		if reader.lists.Load() == lists {
			allowed()
			return fmt.Errorf("no List since the deletion")
		}
		return nil
	})

	// A blocklist ConfigMap: its edits change no policy generation, and are picked up
	// from the ConfigMap informer's events.
	const header = "#domain,#severity,#reject_media,#reject_reports,#public_comment,#obfuscate\n"
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: "blocks"},
		Data: map[string]string{"blocklist.csv": header + "peer.example,suspend,false,false,,false\n"}}
	must(t, k.Create(ctx, cm))
	bl := &fedv1.FederationPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: "blocklist"},
		Spec: fedv1.FederationPolicySpec{TargetRef: fedv1.LocalObjectReference{Name: "main"}, Mode: fedv1.PolicyDenylist,
			BlocklistRef: &fedv1.ConfigMapKeyReference{Name: "blocks", Key: "blocklist.csv"}}}
	must(t, k.Create(ctx, bl))
	enforced(bl)
	if allowed() {
		t.Error("the blocklist policy is Enforced, but peer.example is allowed")
	}
	eventually(t, func() error { // the ConfigMap informer's first events pass
		lists := reader.lists.Load()
		allowed()
		allowed()
		if n := reader.lists.Load() - lists; n != 0 {
			return fmt.Errorf("two evaluations listed %d times", n)
		}
		return nil
	})
	cm.Data["blocklist.csv"] = header + "other.example,suspend,false,false,,false\n"
	must(t, k.Update(ctx, cm))
	eventually(t, func() error {
		if !allowed() {
			return fmt.Errorf("peer.example still refused after the blocklist dropped it")
		}
		return nil
	})
}
