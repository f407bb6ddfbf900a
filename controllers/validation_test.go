package controllers_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
)

// The CRDs' OpenAPI schemas and CEL rules must refuse bad specs at `kubectl apply` time,
// with a message a person understands. Each entry is created on the real API server.
var _ = Describe("CRD validation", func() {
	var ns string
	BeforeEach(func() { ns = newNamespace() })

	DescribeTable("refuses bad specs on create",
		func(build func(ns string) client.Object, wantMessage string) {
			err := k8s.Create(ctx, build(ns))
			Expect(err).To(HaveOccurred(), "the API server accepted an invalid object")
			Expect(err.Error()).To(ContainSubstring(wantMessage))
		},
		Entry("server host with a path", func(ns string) client.Object {
			return server(ns, "s", "forge.example.org/path")
		}, "spec.host"),
		Entry("server host with upper case and underscore", func(ns string) client.Object {
			return server(ns, "s", "Forge_Example.org")
		}, "spec.host"),
		Entry("server scheme ftp", func(ns string) client.Object {
			s := server(ns, "s", "forge.example.org")
			s.Spec.Scheme = "ftp"
			return s
		}, `Unsupported value: "ftp"`),
		Entry("two replicas on SQLite", func(ns string) client.Object {
			s := server(ns, "s", "forge.example.org")
			s.Spec.Replicas = 2
			return s
		}, "replicas > 1 needs storage.postgres"),
		Entry("a delivery lease shorter than three request timeouts", func(ns string) client.Object {
			s := server(ns, "s", "forge.example.org")
			s.Spec.Delivery = &fedv1.DeliverySpec{Lease: &metav1.Duration{Duration: 30 * time.Second}}
			return s
		}, "lease must be at least 90s"),
		Entry("sqlite and postgres at once", func(ns string) client.Object {
			s := server(ns, "s", "forge.example.org")
			q := resource.MustParse("1Gi")
			s.Spec.Storage = &fedv1.ServerStorage{SQLite: &fedv1.SQLiteStorage{Size: &q},
				Postgres: &fedv1.PostgresStorage{DSNSecretRef: fedv1.SecretKeyReference{Name: "pg"}}}
			return s
		}, "storage takes sqlite or postgres, not both"),
		Entry("allowed CIDR that is not a CIDR", func(ns string) client.Object {
			s := server(ns, "s", "forge.example.org")
			s.Spec.AllowedPrivateCIDRs = []string{"10.0.0.0/33"}
			return s
		}, "must be a CIDR"),
		Entry("actor username with a slash", func(ns string) client.Object {
			return actor(ns, "a", "s", "group/project")
		}, "spec.preferredUsername"),
		Entry("forge URL that is not http(s)", func(ns string) client.Object {
			return withForge(actor(ns, "a", "s", "repo"), fedv1.ForgeGitea, "ftp://git.example.org", "alice/repo")
		}, "spec.forge.url"),
		Entry("forge project without an owner", func(ns string) client.Object {
			return withForge(actor(ns, "a", "s", "repo"), fedv1.ForgeGitea, "https://git.example.org", "repo")
		}, "spec.forge.project"),
		Entry("Gitea project with nested groups", func(ns string) client.Object {
			return withForge(actor(ns, "a", "s", "repo"), fedv1.ForgeGitea, "https://git.example.org", "a/b/repo")
		}, "project must be owner/name"),
		Entry("forge of unknown type", func(ns string) client.Object {
			return withForge(actor(ns, "a", "s", "repo"), "Fossil", "https://git.example.org", "alice/repo")
		}, `Unsupported value: "Fossil"`),
		Entry("movedTo that is not a URL", func(ns string) client.Object {
			a := actor(ns, "a", "s", "releases")
			a.Spec.MovedTo = "new@elsewhere.example"
			return a
		}, "spec.movedTo"),
		Entry("alsoKnownAs with a handle instead of a URL", func(ns string) client.Object {
			a := actor(ns, "a", "s", "releases")
			a.Spec.AlsoKnownAs = []string{"https://before.example/users/a", "@a@before.example"}
			return a
		}, "spec.alsoKnownAs[1]"),
		Entry("actor of unknown type", func(ns string) client.Object {
			a := actor(ns, "a", "s", "releases")
			a.Spec.Type = "Robot"
			return a
		}, `Unsupported value: "Robot"`),
		Entry("feed source without a feed", func(ns string) client.Object {
			a := actor(ns, "a", "s", "releases")
			a.Spec.Sources = []fedv1.EventSource{{Name: "tags", Type: fedv1.SourceFeed}}
			return a
		}, "feed is required for type Feed"),
		Entry("webhook source without a secret", func(ns string) client.Object {
			a := actor(ns, "a", "s", "releases")
			a.Spec.Sources = []fedv1.EventSource{{Name: "gitlab", Type: fedv1.SourceGitLab}}
			return a
		}, "webhook sources need secretRef"),
		Entry("key rotation every minute", func(ns string) client.Object {
			a := actor(ns, "a", "s", "releases")
			a.Spec.KeyPolicy = &fedv1.KeyPolicy{RotationPeriod: &metav1.Duration{Duration: 60e9}}
			return a
		}, "rotationPeriod must be at least 1h"),
		Entry("empty allowlist", func(ns string) client.Object {
			p := policy(ns, "p", "s")
			p.Spec.Mode = fedv1.PolicyAllowlist
			return p
		}, "Allowlist mode needs at least one host"),
		Entry("blocklist import in allowlist mode", func(ns string) client.Object {
			p := policy(ns, "p", "s")
			p.Spec.Mode, p.Spec.Hosts = fedv1.PolicyAllowlist, []string{"friend.example"}
			p.Spec.BlocklistRef = &fedv1.ConfigMapKeyReference{Name: "blocks"}
			return p
		}, "only allowed in Denylist mode"),
		Entry("policy host pattern with a wildcard in the middle", func(ns string) client.Object {
			p := policy(ns, "p", "s")
			p.Spec.Hosts = []string{"evil.*.example"}
			return p
		}, "spec.hosts"),
		Entry("zero followers limit", func(ns string) client.Object {
			p := policy(ns, "p", "s")
			p.Spec.Limits = &fedv1.PolicyLimits{MaxFollowersPerActor: ptr.To[int32](0)}
			return p
		}, "spec.limits.maxFollowersPerActor"),
		Entry("inbound subscription by acct: handle", func(ns string) client.Object {
			return subscription(ns, "x", "a", fedv1.DirectionInbound, "acct:alice@mastodon.example")
		}, "an Inbound subscription names the follower by its actor URI"),
		Entry("approved on an outbound subscription", func(ns string) client.Object {
			s := subscription(ns, "x", "a", fedv1.DirectionOutbound, "acct:alice@mastodon.example")
			s.Spec.Approved = ptr.To(true)
			return s
		}, "approved is only for Inbound subscriptions"),
		Entry("remote actor that is neither URI nor acct", func(ns string) client.Object {
			return subscription(ns, "x", "a", fedv1.DirectionOutbound, "alice at mastodon")
		}, "spec.remoteActor"),
		Entry("unknown direction", func(ns string) client.Object {
			return subscription(ns, "x", "a", "Sideways", "https://mastodon.example/users/alice")
		}, `Unsupported value: "Sideways"`),
	)

	DescribeTable("refuses changes to immutable fields",
		func(create func(ns string) client.Object, mutate func(client.Object), wantMessage string) {
			obj := create(ns)
			Expect(k8s.Create(ctx, obj)).To(Succeed())
			base := obj.DeepCopyObject().(client.Object)
			mutate(obj)
			// A merge patch, not an update: controllers write status meanwhile, and the
			// refusal must come from validation, never from a resourceVersion conflict.
			err := k8s.Patch(ctx, obj, client.MergeFrom(base))
			Expect(err).To(HaveOccurred(), "the API server accepted a change of an immutable field")
			Expect(err.Error()).To(ContainSubstring(wantMessage))
		},
		Entry("server host", func(ns string) client.Object { return server(ns, "s", "forge.example.org") },
			func(o client.Object) { o.(*fedv1.FederationServer).Spec.Host = "other.example.org" }, "host is immutable"),
		Entry("actor preferredUsername", func(ns string) client.Object { return actor(ns, "a", "s", "releases") },
			func(o client.Object) { o.(*fedv1.FederatedActor).Spec.PreferredUsername = "renamed" }, "preferredUsername is immutable"),
		Entry("subscription remote actor", func(ns string) client.Object {
			return subscription(ns, "x", "a", fedv1.DirectionOutbound, "acct:alice@mastodon.example")
		}, func(o client.Object) { o.(*fedv1.Subscription).Spec.RemoteActor = "acct:bob@mastodon.example" }, "remoteActor is immutable"),
	)

	It("accepts every sample as written", func() {
		for _, obj := range []client.Object{
			server(ns, "forge", "127.0.0.1:8080"),
			actor(ns, "releases", "forge", "releases-group-project"),
			policy(ns, "p", "forge"),
			subscription(ns, "x", "releases", fedv1.DirectionInbound, "https://mastodon.example/users/alice"),
			withForge(actor(ns, "repo", "forge", "repo"), fedv1.ForgeForgejo, "https://codeberg.org", "alice/repo"),
			withForge(actor(ns, "nested", "forge", "nested"), fedv1.ForgeGitLab, "https://gitlab.example.org/", "group/sub/repo"),
		} {
			Expect(k8s.Create(ctx, obj)).To(Succeed())
		}
	})
})
