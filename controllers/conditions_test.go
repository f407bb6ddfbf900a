package controllers_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
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

	It("turns DeliveryJobsReady False when a ResourceQuota refuses the delivery Job, and True again once it is lifted", func() {
		srv := server(ns, "forge", "forge.example.org")
		threshold := int32(10)
		srv.Spec.Delivery = &fedv1.DeliverySpec{JobThreshold: &threshold}
		Expect(k8s.Create(ctx, srv)).To(Succeed())
		Expect(k8s.Create(ctx, actor(ns, "releases", "forge", "releases"))).To(Succeed())
		got := &fedv1.FederatedActor{}
		got.Namespace, got.Name = ns, "releases"
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(got), got)).To(Succeed())
			g.Expect(got.Status.KeySecretName).NotTo(BeEmpty())
		}).Should(Succeed())
		gotSrv := &fedv1.FederationServer{}
		gotSrv.Namespace, gotSrv.Name = ns, srv.Name
		conds := func() []metav1.Condition { return gotSrv.Status.Conditions }
		Eventually(func(g Gomega) {
			g.Expect(condition(g, gotSrv, conds, fedv1.ConditionDeliveryJobsReady).Status).To(Equal(metav1.ConditionTrue))
		}).Should(Succeed())

		// A quota of no Jobs, with the usage the (absent) quota controller would report.
		jobsCount := corev1.ResourceName("count/jobs.batch")
		q := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "no-jobs"},
			Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{jobsCount: resource.MustParse("0")}}}
		Expect(k8s.Create(ctx, q)).To(Succeed())
		q.Status = corev1.ResourceQuotaStatus{Hard: q.Spec.Hard, Used: corev1.ResourceList{jobsCount: resource.MustParse("0")}}
		Expect(k8s.Status().Update(ctx, q)).To(Succeed())

		// The server reports enough due deliveries for a Job.
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(gotSrv), gotSrv)).To(Succeed())
		patch := client.MergeFrom(gotSrv.DeepCopy())
		at := metav1.NewTime(time.Now())
		gotSrv.Status.Delivery = &fedv1.DeliveryStatus{Pending: 100, Due: 100, ObservedAt: &at}
		Expect(k8s.Status().Patch(ctx, gotSrv, patch)).To(Succeed())

		Eventually(func(g Gomega) {
			c := condition(g, gotSrv, conds, fedv1.ConditionDeliveryJobsReady)
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Reason).To(Equal(fedv1.ReasonCreateFailed))
			g.Expect(c.Message).To(ContainSubstring("creating delivery Job " + ns + "/"))
			g.Expect(c.Message).To(ContainSubstring("exceeded quota: no-jobs"))
		}).Should(Succeed())

		Expect(k8s.Delete(ctx, q)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(condition(g, gotSrv, conds, fedv1.ConditionDeliveryJobsReady).Status).To(Equal(metav1.ConditionTrue))
			var jobs batchv1.JobList
			g.Expect(k8s.List(ctx, &jobs, client.InNamespace(ns))).To(Succeed())
			g.Expect(jobs.Items).To(HaveLen(1))
		}).Should(Succeed())
	})
})
