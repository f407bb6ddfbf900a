package controllers_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
)

var _ = Describe("FederatedActor status", func() {
	var ns string
	BeforeEach(func() { ns = newNamespace() })

	getActor := func(g Gomega, name string) *fedv1.FederatedActor {
		a := &fedv1.FederatedActor{}
		g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, a)).To(Succeed())
		return a
	}
	readyReason := func(g Gomega, name string) string {
		c := meta.FindStatusCondition(getActor(g, name).Status.Conditions, fedv1.ConditionReady)
		g.Expect(c).NotTo(BeNil())
		return c.Reason
	}

	It("says when its server is missing, and publishes its identity once the server exists", func() {
		Expect(k8s.Create(ctx, actor(ns, "rel", "forge", "releases-group-project"))).To(Succeed())
		Eventually(func(g Gomega) string { return readyReason(g, "rel") }).Should(Equal(fedv1.ReasonServerNotFound))

		srv := server(ns, "forge", "127.0.0.1:8080")
		srv.Spec.Scheme = fedv1.SchemeHTTP
		Expect(k8s.Create(ctx, srv)).To(Succeed())
		Eventually(func(g Gomega) {
			a := getActor(g, "rel")
			g.Expect(meta.IsStatusConditionTrue(a.Status.Conditions, fedv1.ConditionReady)).To(BeTrue())
			g.Expect(a.Status.ID).To(Equal("http://127.0.0.1:8080/actors/releases-group-project"))
			g.Expect(a.Status.Handle).To(Equal("releases-group-project@127.0.0.1:8080"))
			g.Expect(a.Status.Inbox).To(Equal(a.Status.ID + "/inbox"))
			g.Expect(a.Status.Outbox).To(Equal(a.Status.ID + "/outbox"))
			g.Expect(a.Status.ObservedGeneration).To(Equal(a.Generation))
		}).Should(Succeed())
	})

	It("refuses a second actor with the same username on one server until the first is gone", func() {
		Expect(k8s.Create(ctx, server(ns, "forge", "forge.example.org"))).To(Succeed())
		Expect(k8s.Create(ctx, actor(ns, "first", "forge", "releases"))).To(Succeed())
		Eventually(func(g Gomega) string { return readyReason(g, "first") }).Should(Equal(fedv1.ReasonReconciled))
		Expect(k8s.Create(ctx, actor(ns, "second", "forge", "Releases"))).To(Succeed())
		Eventually(func(g Gomega) string { return readyReason(g, "second") }).Should(Equal(fedv1.ReasonUsernameConflict))

		Expect(k8s.Delete(ctx, getActor(Default, "first"))).To(Succeed())
		Eventually(func(g Gomega) string { return readyReason(g, "second") }).Should(Equal(fedv1.ReasonReconciled))
	})

	It("counts accepted inbound Subscriptions as followers", func() {
		Expect(k8s.Create(ctx, server(ns, "forge", "forge.example.org"))).To(Succeed())
		Expect(k8s.Create(ctx, actor(ns, "rel", "forge", "releases"))).To(Succeed())
		Eventually(func(g Gomega) *int32 { return getActor(g, "rel").Status.Followers }).Should(HaveValue(BeEquivalentTo(0)))

		accept := func(name, remote string, phase fedv1.SubscriptionPhase) {
			s := subscription(ns, name, "rel", fedv1.DirectionInbound, remote)
			Expect(k8s.Create(ctx, s)).To(Succeed())
			Eventually(func(g Gomega) {
				g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(s), s)).To(Succeed())
				s.Status.Phase = phase
				meta.SetStatusCondition(&s.Status.Conditions, metav1.Condition{Type: fedv1.ConditionAccepted, Status: metav1.ConditionTrue, Reason: "Test"})
				g.Expect(k8s.Status().Update(ctx, s)).To(Succeed())
			}).Should(Succeed())
		}
		accept("a", "https://one.example/users/a", fedv1.PhaseAccepted)
		accept("b", "https://two.example/users/b", fedv1.PhaseAccepted)
		accept("c", "https://three.example/users/c", fedv1.PhaseAwaitingApproval)
		Expect(k8s.Create(ctx, subscription(ns, "out", "rel", fedv1.DirectionOutbound, "acct:x@four.example"))).To(Succeed())

		Eventually(func(g Gomega) *int32 { return getActor(g, "rel").Status.Followers }).Should(HaveValue(BeEquivalentTo(2)))
		Expect(k8s.Delete(ctx, subscription(ns, "a", "rel", fedv1.DirectionInbound, ""))).To(Succeed())
		Eventually(func(g Gomega) *int32 { return getActor(g, "rel").Status.Followers }).Should(HaveValue(BeEquivalentTo(1)))
	})
})
