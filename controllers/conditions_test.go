package controllers_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/controllers"
)

// These tests make a server-side apply fail for real: the object the operator applies is
// taken over by another controller (its ownerReferences name a different controller),
// so the operator's own controller reference would make two, which the API server's
// validation refuses. The condition the reconciler owns must turn False with the reason
// and the API server's message (it used to stay True), and come back once the other
// controller lets go.

// onlyOneController is what the API server answers when an object would get two
// controller references.
const onlyOneController = "Only one reference can have Controller set to true"

var _ = Describe("Conditions on failure", func() {
	var ns string
	var other metav1.OwnerReference
	BeforeEach(func() {
		ns = newNamespace()
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "other-controller"}}
		Expect(k8s.Create(ctx, cm)).To(Succeed())
		other = *metav1.NewControllerRef(cm, corev1.SchemeGroupVersion.WithKind("ConfigMap"))
	})

	// setOwners replaces o's ownerReferences with a merge patch.
	setOwners := func(o client.Object, refs ...metav1.OwnerReference) {
		base := o.DeepCopyObject().(client.Object)
		o.SetOwnerReferences(refs)
		if refs == nil {
			o.SetOwnerReferences([]metav1.OwnerReference{})
		}
		Expect(k8s.Patch(ctx, o, client.MergeFrom(base))).To(Succeed())
	}
	condition := func(g Gomega, o client.Object, conds func() []metav1.Condition, t string) *metav1.Condition {
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(o), o)).To(Succeed())
		c := meta.FindStatusCondition(conds(), t)
		g.Expect(c).NotTo(BeNil(), "no %s condition", t)
		return c
	}

	It("turns WorkloadReady and Ready False when applying the Deployment fails, and True again once it can", func() {
		srv := server(ns, "forge", "forge.example.org")
		Expect(k8s.Create(ctx, srv)).To(Succeed())
		got := &fedv1.FederationServer{}
		got.Namespace, got.Name = ns, srv.Name
		conds := func() []metav1.Condition { return got.Status.Conditions }
		Eventually(func(g Gomega) {
			c := condition(g, got, conds, fedv1.ConditionWorkloadReady)
			g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
		}).Should(Succeed())

		// Another controller takes the Deployment over.
		dep := &appsv1.Deployment{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "forge-server"}, dep)).To(Succeed())
		setOwners(dep, other)

		Eventually(func(g Gomega) {
			c := condition(g, got, conds, fedv1.ConditionWorkloadReady)
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Reason).To(Equal(fedv1.ReasonApplyFailed))
			g.Expect(c.Message).To(ContainSubstring("applying Deployment " + ns + "/forge-server"))
			g.Expect(c.Message).To(ContainSubstring(onlyOneController))
			g.Expect(c.ObservedGeneration).To(Equal(got.Generation))
			ready := meta.FindStatusCondition(got.Status.Conditions, fedv1.ConditionReady)
			g.Expect(ready).NotTo(BeNil())
			g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(ready.Reason).To(Equal(fedv1.ReasonApplyFailed))
		}).Should(Succeed())

		// It lets go; the retry (with backoff) applies the Deployment and clears the failure.
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(dep), dep)).To(Succeed())
		setOwners(dep)
		Eventually(func(g Gomega) {
			c := condition(g, got, conds, fedv1.ConditionWorkloadReady)
			g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
			g.Expect(c.Reason).To(Equal(fedv1.ReasonReconciled))
			g.Expect(c.ObservedGeneration).To(Equal(got.Generation))
			ready := meta.FindStatusCondition(got.Status.Conditions, fedv1.ConditionReady)
			g.Expect(ready).NotTo(BeNil())
			// No kube-controller-manager runs here, so no replica becomes ready.
			g.Expect(ready.Reason).To(Equal(fedv1.ReasonReplicasNotReady))
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(dep), dep)).To(Succeed())
			g.Expect(metav1.IsControlledBy(dep, got)).To(BeTrue())
		}).Should(Succeed())
	})

	It("turns KeyReady and the actor's Ready False when writing the key Secret fails, and True again once it can", func() {
		Expect(k8s.Create(ctx, server(ns, "forge", "forge.example.org"))).To(Succeed())
		a := actor(ns, "releases", "forge", "releases")
		Expect(k8s.Create(ctx, a)).To(Succeed())
		got := &fedv1.FederatedActor{}
		got.Namespace, got.Name = ns, a.Name
		conds := func() []metav1.Condition { return got.Status.Conditions }
		Eventually(func(g Gomega) {
			c := condition(g, got, conds, fedv1.ConditionKeyReady)
			g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
		}).Should(Succeed())

		// Another controller takes the key Secret over.
		secret := &corev1.Secret{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: controllers.KeySecretName(a.Name)}, secret)).To(Succeed())
		setOwners(secret, other)

		Eventually(func(g Gomega) {
			c := condition(g, got, conds, fedv1.ConditionKeyReady)
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Reason).To(Equal(fedv1.ReasonApplyFailed))
			g.Expect(c.Message).To(ContainSubstring("applying Secret " + ns + "/" + secret.Name))
			g.Expect(c.Message).To(ContainSubstring(onlyOneController))
			g.Expect(c.ObservedGeneration).To(Equal(got.Generation))
			ready := meta.FindStatusCondition(got.Status.Conditions, fedv1.ConditionReady)
			g.Expect(ready).NotTo(BeNil())
			g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(ready.Reason).To(Equal(fedv1.ReasonApplyFailed))
			g.Expect(ready.Message).To(ContainSubstring(onlyOneController))
		}).Should(Succeed())

		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(secret), secret)).To(Succeed())
		setOwners(secret)
		Eventually(func(g Gomega) {
			c := condition(g, got, conds, fedv1.ConditionKeyReady)
			g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
			g.Expect(c.ObservedGeneration).To(Equal(got.Generation))
			g.Expect(meta.IsStatusConditionTrue(got.Status.Conditions, fedv1.ConditionReady)).To(BeTrue())
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(secret), secret)).To(Succeed())
			g.Expect(metav1.IsControlledBy(secret, got)).To(BeTrue())
		}).Should(Succeed())
	})
})
