package controllers_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
)

var _ = Describe("FederationServer store report", func() {
	It("turns Ready False with the store's reason and message while the server cannot open its store, and back", func() {
		ns := newNamespace()
		srv := server(ns, "forge", "forge.example.org")
		Expect(k8s.Create(ctx, srv)).To(Succeed())
		Eventually(func(g Gomega) {
			got := &fedv1.FederationServer{}
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(srv), got)).To(Succeed())
			g.Expect(meta.FindStatusCondition(got.Status.Conditions, fedv1.ConditionReady)).NotTo(BeNil())
		}).Should(Succeed())

		// What the server process writes when its PostgreSQL refuses the password.
		setStore := func(status metav1.ConditionStatus, reason, msg string) {
			Eventually(func() error {
				got := &fedv1.FederationServer{}
				if err := k8s.Get(ctx, client.ObjectKeyFromObject(srv), got); err != nil {
					return err
				}
				base := got.DeepCopy()
				meta.SetStatusCondition(&got.Status.Conditions, metav1.Condition{Type: fedv1.ConditionStoreReady, Status: status, Reason: reason, Message: msg})
				return k8s.Status().Patch(ctx, got, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
			}).Should(Succeed())
		}
		msg := `failed to connect to user=fedforge database=fedforge: FATAL: password authentication failed for user "fedforge"`
		setStore(metav1.ConditionFalse, fedv1.ReasonStoreUnavailable, msg)
		Eventually(func(g Gomega) {
			got := &fedv1.FederationServer{}
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(srv), got)).To(Succeed())
			ready := meta.FindStatusCondition(got.Status.Conditions, fedv1.ConditionReady)
			g.Expect(ready).NotTo(BeNil())
			g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(ready.Reason).To(Equal(fedv1.ReasonStoreUnavailable))
			g.Expect(ready.Message).To(Equal(msg))
		}).Should(Succeed())

		setStore(metav1.ConditionTrue, fedv1.ReasonStoreOpened, "the store is open")
		Eventually(func(g Gomega) {
			got := &fedv1.FederationServer{}
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(srv), got)).To(Succeed())
			ready := meta.FindStatusCondition(got.Status.Conditions, fedv1.ConditionReady)
			// No kube-controller-manager runs here, so the replicas stay unready: the
			// reason goes back to the replica count.
			g.Expect(ready.Reason).To(Equal(fedv1.ReasonReplicasNotReady))
		}).Should(Succeed())
	})
})
