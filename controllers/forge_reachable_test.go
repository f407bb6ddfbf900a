package controllers_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
	"github.com/fedforge/fedforge/internal/forge/giteatest"
)

// The ForgeReachable condition against a real Gitea: the operator reads the token from
// the Secret spec.forge names, reads the project through the server's outbound guard, and
// reports the forge's own answer.
var _ = Describe("ForgeReachable", Ordered, func() {
	var (
		g       *giteatest.Instance
		project string
		clone   string
		bot     *giteatest.User
	)
	BeforeAll(func() {
		g = giteatest.Start(GinkgoTB())
		repo := g.CreateRepo(GinkgoTB(), "fronted")
		project, clone = repo.FullName, repo.CloneURL
		bot = g.CreateUser(GinkgoTB(), "fedforge", "read:repository", "write:issue")
	})

	var ns string
	BeforeEach(func() { ns = newNamespace() })

	forgeCondition := func(g Gomega, name string) *metav1.Condition {
		a := &fedv1.FederatedActor{}
		g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, a)).To(Succeed())
		c := meta.FindStatusCondition(a.Status.Conditions, fedv1.ConditionForgeReachable)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.ObservedGeneration).To(Equal(a.Generation))
		return c
	}
	loopbackServer := func() *fedv1.FederationServer {
		s := server(ns, "forge", "127.0.0.1:8080")
		s.Spec.Scheme = fedv1.SchemeHTTP
		s.Spec.AllowedPrivateCIDRs = []string{"127.0.0.0/8"}
		return s
	}
	tokenSecret := func(name, token string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, StringData: map[string]string{"token": token}}
	}
	repoActor := func(name, secret string) *fedv1.FederatedActor {
		a := withForge(actor(ns, name, "forge", name), fedv1.ForgeGitea, g.URL, project)
		a.Spec.Type = fedv1.ActorRepository
		a.Spec.Forge.TokenSecretRef.Name = secret
		return a
	}

	It("is True for a token that reads the project, and status.forge carries its clone URL", func() {
		Expect(k8s.Create(ctx, loopbackServer())).To(Succeed())
		Expect(k8s.Create(ctx, tokenSecret("forge-token", bot.Token))).To(Succeed())
		Expect(k8s.Create(ctx, repoActor("repo", "forge-token"))).To(Succeed())
		Eventually(func(g Gomega) {
			c := forgeCondition(g, "repo")
			g.Expect(c.Status).To(Equal(metav1.ConditionTrue), c.Message)
			g.Expect(c.Reason).To(Equal(fedv1.ReasonForgeReachable))
			a := &fedv1.FederatedActor{}
			g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "repo"}, a)).To(Succeed())
			g.Expect(a.Status.Forge).NotTo(BeNil())
			g.Expect(a.Status.Forge.CloneURI).To(Equal(clone))
			g.Expect(a.Status.Forge.ForkedFrom).To(BeEmpty())
		}).Should(Succeed())
	})

	It("is False with Gitea's message for a wrong token, and never shows the token", func() {
		const wrong = "0123456789abcdef0123456789abcdef01234567"
		Expect(k8s.Create(ctx, loopbackServer())).To(Succeed())
		Expect(k8s.Create(ctx, tokenSecret("bad-token", wrong))).To(Succeed())
		Expect(k8s.Create(ctx, repoActor("repo", "bad-token"))).To(Succeed())
		Eventually(func(g Gomega) {
			c := forgeCondition(g, "repo")
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Reason).To(Equal(fedv1.ReasonForgeUnauthorized))
			g.Expect(c.Message).To(ContainSubstring("invalid username, password or token"))
			g.Expect(c.Message).NotTo(ContainSubstring(wrong))
		}).Should(Succeed())
	})

	It("is False with TokenMissing while the Secret does not exist", func() {
		Expect(k8s.Create(ctx, loopbackServer())).To(Succeed())
		Expect(k8s.Create(ctx, repoActor("repo", "no-such-secret"))).To(Succeed())
		Eventually(func(g Gomega) {
			c := forgeCondition(g, "repo")
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Reason).To(Equal(fedv1.ReasonTokenMissing))
			g.Expect(c.Message).To(ContainSubstring("no-such-secret"))
		}).Should(Succeed())
	})

	It("is False when the server does not allow the forge's private range", func() {
		s := loopbackServer()
		s.Spec.AllowedPrivateCIDRs = nil
		Expect(k8s.Create(ctx, s)).To(Succeed())
		Expect(k8s.Create(ctx, tokenSecret("forge-token", bot.Token))).To(Succeed())
		Expect(k8s.Create(ctx, repoActor("repo", "forge-token"))).To(Succeed())
		Eventually(func(g Gomega) {
			c := forgeCondition(g, "repo")
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Reason).To(Equal(fedv1.ReasonForgeUnreachable))
			g.Expect(c.Message).To(ContainSubstring("special range 127.0.0.0/8"))
		}).Should(Succeed())
	})

	It("is absent without spec.forge", func() {
		Expect(k8s.Create(ctx, loopbackServer())).To(Succeed())
		Expect(k8s.Create(ctx, actor(ns, "plain", "forge", "plain"))).To(Succeed())
		Eventually(func(g Gomega) string {
			a := &fedv1.FederatedActor{}
			g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "plain"}, a)).To(Succeed())
			return a.Status.ID
		}).ShouldNot(BeEmpty())
		a := &fedv1.FederatedActor{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "plain"}, a)).To(Succeed())
		Expect(meta.FindStatusCondition(a.Status.Conditions, fedv1.ConditionForgeReachable)).To(BeNil())
	})
})
