package controllers_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
)

var _ = Describe("FederationServer rollout report", func() {
	// No kube-controller-manager runs in envtest: the test writes the Deployment's status
	// as the Deployment controller would during a rolling update.
	It("says RollingOut with the updated and ready counts while a new pod template rolls out, and Ready when done", func() {
		ns := newNamespace()
		srv := server(ns, "forge", "forge.example.org")
		Expect(k8s.Create(ctx, srv)).To(Succeed())
		key := client.ObjectKey{Namespace: ns, Name: "forge-server"}
		setStatus := func(updated, ready int32) {
			Eventually(func() error {
				dep := &appsv1.Deployment{}
				if err := k8s.Get(ctx, key, dep); err != nil {
					return err
				}
				dep.Status = appsv1.DeploymentStatus{ObservedGeneration: dep.Generation, Replicas: 1,
					UpdatedReplicas: updated, ReadyReplicas: ready, AvailableReplicas: ready}
				return k8s.Status().Update(ctx, dep)
			}).Should(Succeed())
		}
		readyCond := func(g Gomega) *metav1.Condition {
			got := &fedv1.FederationServer{}
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(srv), got)).To(Succeed())
			c := meta.FindStatusCondition(got.Status.Conditions, fedv1.ConditionReady)
			g.Expect(c).NotTo(BeNil())
			return c
		}

		setStatus(1, 1)
		Eventually(func(g Gomega) {
			g.Expect(readyCond(g).Status).To(Equal(metav1.ConditionTrue))
		}).Should(Succeed())

		By("a new pod template: the old replica still ready, the new one not yet")
		setStatus(0, 1)
		Eventually(func(g Gomega) {
			c := readyCond(g)
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Reason).To(Equal(fedv1.ReasonRollingOut))
			g.Expect(c.Message).To(Equal("rolling out: 0/1 replicas updated, 1 ready"))
		}).Should(Succeed())

		setStatus(1, 1)
		Eventually(func(g Gomega) {
			g.Expect(readyCond(g).Status).To(Equal(metav1.ConditionTrue))
		}).Should(Succeed())
	})
})
