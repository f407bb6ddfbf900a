package controllers_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
)

var _ = Describe("Subscription references", func() {
	It("says when its actor does not exist, and recovers when it appears", func() {
		ns := newNamespace()
		s := subscription(ns, "follow", "rel", fedv1.DirectionOutbound, "acct:alice@Mastodon.example")
		Expect(k8s.Create(ctx, s)).To(Succeed())
		cond := func(g Gomega) *metav1.Condition {
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(s), s)).To(Succeed())
			return meta.FindStatusCondition(s.Status.Conditions, fedv1.ConditionActorFound)
		}
		Eventually(cond).Should(And(Not(BeNil()), HaveField("Status", metav1.ConditionFalse), HaveField("Reason", fedv1.ReasonActorNotFound)))
		Expect(s.Status.RemoteHost).To(Equal("mastodon.example"))
		Expect(s.Status.Phase).To(Equal(fedv1.PhasePending), "nothing has been exchanged yet")
		Expect(meta.IsStatusConditionTrue(s.Status.Conditions, fedv1.ConditionReady)).To(BeFalse())

		Expect(k8s.Create(ctx, actor(ns, "rel", "forge", "rel"))).To(Succeed())
		Eventually(cond).Should(HaveField("Status", metav1.ConditionTrue))
		Expect(s.Status.Phase).To(Equal(fedv1.PhasePending), "the controller must not claim an exchange happened")
	})
})

var _ = Describe("FederationPolicy", func() {
	It("reports attachment and the imported blocklist", func() {
		ns := newNamespace()
		p := policy(ns, "deny", "forge")
		p.Spec.BlocklistRef = &fedv1.ConfigMapKeyReference{Name: "blocks"}
		Expect(k8s.Create(ctx, p)).To(Succeed())
		get := func(g Gomega) *fedv1.FederationPolicy {
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(p), p)).To(Succeed())
			return p
		}
		reason := func(t string) func(Gomega) string {
			return func(g Gomega) string {
				c := meta.FindStatusCondition(get(g).Status.Conditions, t)
				g.Expect(c).NotTo(BeNil())
				return c.Reason
			}
		}
		Eventually(reason(fedv1.ConditionAttached)).Should(Equal(fedv1.ReasonServerNotFound))
		Expect(p.Status.Attached).To(BeFalse())
		Eventually(reason(fedv1.ConditionBlocklistLoaded)).Should(Equal(fedv1.ReasonBlocklistNotFound))

		Expect(k8s.Create(ctx, server(ns, "forge", "forge.example.org"))).To(Succeed())
		Eventually(func(g Gomega) bool { return get(g).Status.Attached }).Should(BeTrue())

		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "blocks"}, Data: map[string]string{
			"blocklist.csv": "#domain,#severity,#reject_media,#reject_reports,#public_comment,#obfuscate\nspam.example,suspend,true,true,,false\nloud.example,silence,false,false,,false\n",
		}}
		Expect(k8s.Create(ctx, cm)).To(Succeed())
		Eventually(func(g Gomega) int32 { return get(g).Status.BlocklistEntries }).Should(BeEquivalentTo(2))
		Eventually(func(g Gomega) bool { return meta.IsStatusConditionTrue(get(g).Status.Conditions, fedv1.ConditionReady) }).Should(BeTrue())

		cm.Data["blocklist.csv"] = "#domain,#severity\nspam.example,obliterate\n"
		Expect(k8s.Update(ctx, cm)).To(Succeed())
		Eventually(reason(fedv1.ConditionBlocklistLoaded)).Should(Equal(fedv1.ReasonBlocklistInvalid))
		Expect(meta.FindStatusCondition(p.Status.Conditions, fedv1.ConditionBlocklistLoaded).Message).To(ContainSubstring("unknown severity"))
	})
})
