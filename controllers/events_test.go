package controllers_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
)

// described lists the Events of obj the way `kubectl describe` does: core/v1 Events
// selected by the involved object's kind, namespace, name and uid (the events.k8s.io
// Events the recorders write are served there too). It returns "Type Reason: note" lines.
func described(g Gomega, obj client.Object, kind string) []string {
	var list corev1.EventList
	g.Expect(k8s.List(ctx, &list, client.InNamespace(obj.GetNamespace()), client.MatchingFields{
		"involvedObject.kind": kind, "involvedObject.name": obj.GetName(), "involvedObject.uid": string(obj.GetUID()),
	})).To(Succeed())
	var out []string
	for _, e := range list.Items {
		out = append(out, e.Type+" "+e.Reason+": "+e.Message)
	}
	return out
}

var _ = Describe("Events of the manager", func() {
	It("records on a Subscription that its actor does not exist, once", func() {
		ns := newNamespace()
		sub := subscription(ns, "orphan", "nobody", fedv1.DirectionOutbound, "https://remote.example/users/a")
		Expect(k8s.Create(ctx, sub)).To(Succeed())
		Eventually(func(g Gomega) []string { return described(g, sub, "Subscription") }).Should(ContainElement(
			`Warning ActorNotFound: FederatedActor "nobody" does not exist in namespace ` + ns))
		Consistently(func(g Gomega) int { return len(described(g, sub, "Subscription")) }, "1s").Should(Equal(1))
	})

	It("records on a FederatedActor that its server does not exist", func() {
		ns := newNamespace()
		a := actor(ns, "lonely", "missing", "lonely")
		Expect(k8s.Create(ctx, a)).To(Succeed())
		Eventually(func(g Gomega) []string { return described(g, a, "FederatedActor") }).Should(ContainElement(
			`Warning ServerNotFound: FederationServer "missing" does not exist in namespace ` + ns))
	})
})
