package controllers_test

import (
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/controllers"
	"github.com/fedforge/fedforge/internal/keys"
)

var _ = Describe("Actor keys", func() {
	var ns string
	BeforeEach(func() {
		ns = newNamespace()
		Expect(k8s.Create(ctx, server(ns, "forge", "forge.example.org"))).To(Succeed())
	})

	keySecret := func(actorName string) func(Gomega) *corev1.Secret {
		return func(g Gomega) *corev1.Secret {
			s := &corev1.Secret{}
			g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: controllers.KeySecretName(actorName)}, s)).To(Succeed())
			return s
		}
	}
	validPair := func(actorName string) func(Gomega) *keys.Pair {
		return func(g Gomega) *keys.Pair {
			p, err := keys.FromData(keySecret(actorName)(g).Data)
			g.Expect(err).NotTo(HaveOccurred())
			return p
		}
	}
	events := func(g Gomega, reason string) []eventsv1.Event {
		var list eventsv1.EventList
		g.Expect(k8s.List(ctx, &list, client.InNamespace(ns))).To(Succeed())
		var out []eventsv1.Event
		for _, e := range list.Items {
			if e.Reason == reason {
				out = append(out, e)
			}
		}
		return out
	}

	It("creates an owned, labelled Secret with matching RSA-2048 and Ed25519 keys", func() {
		a := actor(ns, "releases", "forge", "releases")
		Expect(k8s.Create(ctx, a)).To(Succeed())

		Eventually(keySecret("releases")).ShouldNot(BeNil())
		secret := keySecret("releases")(Default)
		Expect(metav1.IsControlledBy(secret, a)).To(BeTrue(), "Secret must be controlled by its actor")
		Expect(secret.Labels).To(HaveKeyWithValue(fedv1.LabelActor, "releases"))
		Expect(secret.Labels).To(HaveKeyWithValue(fedv1.LabelManagedBy, fedv1.ManagedByValue))

		p := validPair("releases")(Default)
		Expect(p.RSA.N.BitLen()).To(Equal(2048))
		pub, err := keys.ParsePublic(secret.Data[keys.Ed25519PublicKey])
		Expect(err).NotTo(HaveOccurred())
		Expect(pub.(ed25519.PublicKey).Equal(p.Ed25519.Public())).To(BeTrue())

		Eventually(func(g Gomega) {
			got := &fedv1.FederatedActor{}
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(a), got)).To(Succeed())
			g.Expect(got.Status.KeySecretName).To(Equal(secret.Name))
			g.Expect(meta.IsStatusConditionTrue(got.Status.Conditions, fedv1.ConditionKeyReady)).To(BeTrue())
			g.Expect(got.Status.Keys).NotTo(BeNil())
			g.Expect(got.Status.Keys.RSAFingerprint).To(Equal(keys.Fingerprint(p.RSA.Public())))
			g.Expect(got.Status.Keys.RSAKeyID).To(Equal("https://forge.example.org/actors/releases#main-key"))
		}).Should(Succeed())
		// No private key material may reach status.
		got := &fedv1.FederatedActor{}
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(a), got)).To(Succeed())
		status, err := json.Marshal(got.Status)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(status)).NotTo(ContainSubstring("PRIVATE"))
	})

	It("rotates on request and keeps the previous public key published for the overlap", func() {
		a := actor(ns, "rot", "forge", "rot")
		a.Spec.KeyPolicy = &fedv1.KeyPolicy{Overlap: &metav1.Duration{Duration: 3e9}}
		Expect(k8s.Create(ctx, a)).To(Succeed())
		Eventually(validPair("rot")).ShouldNot(BeNil())
		old := validPair("rot")(Default)

		// A merge patch: status writes by the controllers race with an Update.
		base := a.DeepCopy()
		a.Annotations = map[string]string{fedv1.AnnotationRotateKeys: "first"}
		Expect(k8s.Patch(ctx, a, client.MergeFrom(base))).To(Succeed())

		Eventually(func(g Gomega) {
			s := keySecret("rot")(g)
			p, err := keys.FromData(s.Data)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(p.RSA.Equal(old.RSA)).To(BeFalse(), "keys were not rotated")
			prev, err := keys.ParsePublic(s.Data[keys.PreviousRSAPublicKey])
			g.Expect(err).NotTo(HaveOccurred(), "previous RSA public key must stay published")
			g.Expect(prev.(*rsa.PublicKey).Equal(old.RSA.Public())).To(BeTrue())
			prevEd, err := keys.ParsePublic(s.Data[keys.PreviousEd25519PublicKey])
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(prevEd.(ed25519.PublicKey).Equal(old.Ed25519.Public())).To(BeTrue())
		}).Should(Succeed())
		Eventually(func(g Gomega) { g.Expect(events(g, fedv1.ReasonKeysRotated)).NotTo(BeEmpty()) }).Should(Succeed())

		// After the 3 s overlap the previous keys are withdrawn.
		Eventually(func(g Gomega) {
			s := keySecret("rot")(g)
			g.Expect(s.Data).NotTo(HaveKey(keys.PreviousRSAPublicKey))
			g.Expect(s.Data).NotTo(HaveKey(keys.PreviousEd25519PublicKey))
		}).Should(Succeed())
	})

	It("repairs a tampered Secret and recreates a deleted one", func() {
		a := actor(ns, "fix", "forge", "fix")
		Expect(k8s.Create(ctx, a)).To(Succeed())
		Eventually(validPair("fix")).ShouldNot(BeNil())
		Eventually(func(g Gomega) {
			got := &fedv1.FederatedActor{}
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(a), got)).To(Succeed())
			g.Expect(got.Status.KeySecretName).NotTo(BeEmpty())
		}).Should(Succeed())

		s := keySecret("fix")(Default)
		base := s.DeepCopy()
		s.Data[keys.RSAPublicKey] = []byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
		Expect(k8s.Patch(ctx, s, client.MergeFrom(base))).To(Succeed())
		Eventually(validPair("fix")).ShouldNot(BeNil())
		Eventually(func(g Gomega) { g.Expect(events(g, fedv1.ReasonKeysRepaired)).NotTo(BeEmpty()) }).Should(Succeed())

		old := validPair("fix")(Default)
		Expect(k8s.Delete(ctx, keySecret("fix")(Default))).To(Succeed())
		Eventually(func(g Gomega) {
			p := validPair("fix")(g)
			g.Expect(p.RSA.Equal(old.RSA)).To(BeFalse(), "a deleted Secret must come back with new keys")
		}).Should(Succeed())
	})
})
