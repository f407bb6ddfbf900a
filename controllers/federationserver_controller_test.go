package controllers_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
)

var _ = Describe("FederationServer workload", func() {
	var ns string
	BeforeEach(func() { ns = newNamespace() })

	It("creates the server's Deployment, Service, storage and RBAC, owned by the server", func() {
		srv := server(ns, "forge", "forge.example.org")
		Expect(k8s.Create(ctx, srv)).To(Succeed())
		key := client.ObjectKey{Namespace: ns, Name: "forge-server"}

		owned := func(g Gomega, o client.Object, k client.ObjectKey) {
			g.Expect(k8s.Get(ctx, k, o)).To(Succeed())
			g.Expect(metav1.IsControlledBy(o, srv)).To(BeTrue(), "%T %s must be controlled by the server", o, k)
		}
		Eventually(func(g Gomega) {
			dep := &appsv1.Deployment{}
			owned(g, dep, key)
			c := dep.Spec.Template.Spec.Containers[0]
			g.Expect(c.Args).To(ContainElement("--server=" + ns + "/forge"))
			g.Expect(c.Args).To(ContainElement("--public-host="+srv.Spec.Host), "the User-Agent names the public host")
			g.Expect(c.Image).To(Equal("fedforge:test"))
			g.Expect(dep.Spec.Strategy.Type).To(Equal(appsv1.RecreateDeploymentStrategyType), "SQLite on RWO needs Recreate")
			g.Expect(*dep.Spec.Template.Spec.SecurityContext.RunAsNonRoot).To(BeTrue())
			owned(g, &corev1.Service{}, key)
			owned(g, &corev1.ServiceAccount{}, key)
			role := &rbacv1.Role{}
			owned(g, role, key)
			g.Expect(role.Rules).To(ContainElement(HaveField("Resources", ContainElement("subscriptions"))))
			owned(g, &rbacv1.RoleBinding{}, key)
			owned(g, &corev1.PersistentVolumeClaim{}, client.ObjectKey{Namespace: ns, Name: "forge-data"})
			pdb := &policyv1.PodDisruptionBudget{}
			owned(g, pdb, key)
			g.Expect(pdb.Spec.MaxUnavailable.IntValue()).To(Equal(1), "one replica down at a time for drains")
			g.Expect(pdb.Spec.Selector.MatchLabels).To(Equal(dep.Spec.Selector.MatchLabels))
			g.Expect(c.Args).To(ContainElement(HavePrefix("--shutdown-delay=")), "a stopping replica drains before it closes")
		}).Should(Succeed())

		Eventually(func(g Gomega) {
			got := &fedv1.FederationServer{}
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(srv), got)).To(Succeed())
			g.Expect(got.Status.URL).To(Equal("https://forge.example.org"))
			// No kube-controller-manager runs here, so no replica becomes ready.
			g.Expect(got.Status.Conditions).To(ContainElement(And(HaveField("Type", fedv1.ConditionReady), HaveField("Status", metav1.ConditionFalse))))
		}).Should(Succeed())
	})

	It("rolls the Deployment on spec changes and manages the Ingress", func() {
		srv := server(ns, "forge", "forge.example.org")
		Expect(k8s.Create(ctx, srv)).To(Succeed())
		key := client.ObjectKey{Namespace: ns, Name: "forge-server"}
		hash := func(g Gomega) string {
			dep := &appsv1.Deployment{}
			g.Expect(k8s.Get(ctx, key, dep)).To(Succeed())
			return dep.Spec.Template.Annotations["federation.fedforge.dev/spec-hash"]
		}
		first := ""
		Eventually(func(g Gomega) { first = hash(g); g.Expect(first).NotTo(BeEmpty()) }).Should(Succeed())

		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(srv), srv)).To(Succeed())
		base := srv.DeepCopy()
		srv.Spec.Image = "fedforge:v2"
		srv.Spec.Ingress = &fedv1.ServerIngress{ClassName: ptr.To("nginx"), TLSSecretName: "forge-tls"}
		Expect(k8s.Patch(ctx, srv, client.MergeFrom(base))).To(Succeed()) // status writes race with Update

		Eventually(func(g Gomega) {
			g.Expect(hash(g)).NotTo(Equal(first))
			dep := &appsv1.Deployment{}
			g.Expect(k8s.Get(ctx, key, dep)).To(Succeed())
			g.Expect(dep.Spec.Template.Spec.Containers[0].Image).To(Equal("fedforge:v2"))
			ing := &networkingv1.Ingress{}
			g.Expect(k8s.Get(ctx, key, ing)).To(Succeed())
			g.Expect(ing.Spec.Rules[0].Host).To(Equal("forge.example.org"))
			g.Expect(ing.Spec.TLS[0].SecretName).To(Equal("forge-tls"))
			g.Expect(metav1.IsControlledBy(ing, srv)).To(BeTrue())
		}).Should(Succeed())

		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(srv), srv)).To(Succeed())
		base = srv.DeepCopy()
		srv.Spec.Ingress = nil
		Expect(k8s.Patch(ctx, srv, client.MergeFrom(base))).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8s.Get(ctx, key, &networkingv1.Ingress{}))
		}).Should(BeTrue(), "the Ingress must go when spec.ingress is removed")
	})

	It("uses PostgreSQL from a Secret instead of a volume when asked", func() {
		srv := server(ns, "big", "big.example.org")
		srv.Spec.Replicas = 3
		srv.Spec.Storage = &fedv1.ServerStorage{Postgres: &fedv1.PostgresStorage{DSNSecretRef: fedv1.SecretKeyReference{Name: "pg"}}}
		Expect(k8s.Create(ctx, srv)).To(Succeed())
		Eventually(func(g Gomega) {
			dep := &appsv1.Deployment{}
			g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "big-server"}, dep)).To(Succeed())
			g.Expect(*dep.Spec.Replicas).To(BeEquivalentTo(3))
			g.Expect(dep.Spec.Template.Spec.Containers[0].Env).To(ContainElement(And(
				HaveField("Name", "FEDFORGE_STORE_DSN"),
				HaveField("ValueFrom.SecretKeyRef.Name", "pg"),
				HaveField("ValueFrom.SecretKeyRef.Key", "dsn"))))
		}).Should(Succeed())
		Consistently(func() bool {
			return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "big-data"}, &corev1.PersistentVolumeClaim{}))
		}, "2s").Should(BeTrue(), "no PVC with PostgreSQL storage")
	})
})
