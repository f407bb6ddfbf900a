package controllers_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
)

var _ = Describe("Delivery Jobs", func() {
	var ns string
	BeforeEach(func() { ns = newNamespace() })

	report := func(srv *fedv1.FederationServer, due int64, at time.Time) {
		GinkgoHelper()
		got := &fedv1.FederationServer{}
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(srv), got)).To(Succeed())
		patch := client.MergeFrom(got.DeepCopy())
		t := metav1.NewTime(at)
		got.Status.Delivery = &fedv1.DeliveryStatus{Pending: due, Due: due, ObservedAt: &t}
		Expect(k8s.Status().Patch(ctx, got, patch)).To(Succeed())
	}
	jobs := func(g Gomega) []batchv1.Job {
		var list batchv1.JobList
		g.Expect(k8s.List(ctx, &list, client.InNamespace(ns))).To(Succeed())
		return list.Items
	}

	It("gives the server a delivery token and starts one Job, with the actors' keys read-only, when enough is due", func() {
		srv := server(ns, "forge", "forge.example.org")
		threshold := int32(100)
		srv.Spec.Delivery = &fedv1.DeliverySpec{JobThreshold: &threshold}
		Expect(k8s.Create(ctx, srv)).To(Succeed())
		Expect(k8s.Create(ctx, actor(ns, "releases", "forge", "releases"))).To(Succeed())
		Eventually(func(g Gomega) {
			a := &fedv1.FederatedActor{}
			g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "releases"}, a)).To(Succeed())
			g.Expect(a.Status.KeySecretName).NotTo(BeEmpty())
		}).Should(Succeed())

		// The token Secret exists, owned by the server, and the server Deployment reads it.
		Eventually(func(g Gomega) {
			s := &corev1.Secret{}
			g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "forge-delivery-token"}, s)).To(Succeed())
			g.Expect(s.Data["token"]).To(HaveLen(64))
			g.Expect(metav1.IsControlledBy(s, srv)).To(BeTrue())
			dep := &appsv1.Deployment{}
			g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "forge-server"}, dep)).To(Succeed())
			c := dep.Spec.Template.Spec.Containers[0]
			g.Expect(c.Args).To(ContainElement("--internal-listen=:8081"))
			g.Expect(c.Env).To(ContainElement(HaveField("ValueFrom.SecretKeyRef.Name", "forge-delivery-token")))
		}).Should(Succeed())

		// Below the threshold: no Job.
		report(srv, 99, time.Now())
		Consistently(func(g Gomega) { g.Expect(jobs(g)).To(BeEmpty()) }, "2s").Should(Succeed())

		report(srv, 1000, time.Now().Add(time.Second))
		Eventually(func(g Gomega) {
			js := jobs(g)
			g.Expect(js).To(HaveLen(1))
			j := js[0]
			g.Expect(metav1.IsControlledBy(&j, srv)).To(BeTrue())
			g.Expect(j.Spec.TTLSecondsAfterFinished).NotTo(BeNil())
			g.Expect(*j.Spec.BackoffLimit).To(BeNumerically("<=", 3))
			g.Expect(j.Spec.ActiveDeadlineSeconds).NotTo(BeNil())
			pod := j.Spec.Template.Spec
			g.Expect(*pod.AutomountServiceAccountToken).To(BeFalse())
			c := pod.Containers[0]
			g.Expect(c.Image).To(Equal("fedforge:test"))
			g.Expect(c.Args).To(ContainElements("deliver", "--queue-url=http://forge-server."+ns+".svc:8081/internal/delivery"))
			g.Expect(c.Args).To(ContainElement("--actor=https://forge.example.org/actors/releases=releases"))
			g.Expect(c.Resources.Limits).To(HaveKey(corev1.ResourceMemory))
			g.Expect(c.VolumeMounts).To(ContainElement(And(HaveField("Name", "keys"), HaveField("ReadOnly", true))))
			g.Expect(pod.Volumes[0].Projected.Sources[0].Secret.Name).To(Equal("releases-keys"))
		}).Should(Succeed())

		// While it runs, a new report starts no second Job.
		report(srv, 2000, time.Now().Add(2*time.Second))
		Consistently(func(g Gomega) { g.Expect(jobs(g)).To(HaveLen(1)) }, "2s").Should(Succeed())
	})
})
