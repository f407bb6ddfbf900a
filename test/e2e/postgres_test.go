//go:build e2e

/*
Copyright 2026 The Fedforge Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the database/sql driver, to make a schema for the second server
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
)

// clusterPostgres starts the PostgreSQL the cluster's pods use (hack/cluster-postgres.sh,
// on the node's bridge address), from scratch, and returns its DSN; it is destroyed after
// the specs that use it.
func clusterPostgres(ctx context.Context) string {
	GinkgoHelper()
	script := filepath.Join(root, "hack", "cluster-postgres.sh")
	out, err := exec.CommandContext(ctx, script, "destroy").CombinedOutput()
	Expect(err).NotTo(HaveOccurred(), "%s destroy: %s", script, out)
	cmd := exec.CommandContext(ctx, script)
	cmd.Stderr = GinkgoWriter
	dsn, err := cmd.Output()
	Expect(err).NotTo(HaveOccurred(), "%s", script)
	DeferCleanup(func(ctx SpecContext) {
		out, err := exec.CommandContext(ctx, script, "destroy").CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), "%s destroy: %s", script, out)
	})
	return strings.TrimSpace(string(dsn))
}

// pgServerManifest is a FederationServer on PostgreSQL with replicas, its DSN in Secret db,
// and the shortest delivery lease (so rows a killed replica held come back within 90 s).
func (i instance) pgServerManifest(replicas int) string {
	return i.serverManifest() + fmt.Sprintf(`  replicas: %d
  storage:
    postgres:
      dsnSecretRef: {name: db}
  delivery:
    lease: 90s
    jobThreshold: 100000
`, replicas)
}

var _ = Describe("Three replicas on PostgreSQL", Ordered, ContinueOnFailure, func() {
	var (
		pg   = instance{ns: "e2e-pg"}
		fans = instance{ns: "e2e-pg-fans"}
		dsn  string
	)
	const project, fan, gitlabToken = "project", "fan", "e2e-pg-gitlab-token"

	BeforeAll(func(ctx SpecContext) {
		dsn = clusterPostgres(ctx)
		createNamespace(ctx, pg.ns)
		createNamespace(ctx, fans.ns)
		apply(ctx, pg.ns, secretManifest("db", "dsn", dsn)+"---"+pg.pgServerManifest(3)+"---"+
			secretManifest("gitlab-webhook", "token", gitlabToken)+"---"+releasesActorManifest(project))
		apply(ctx, fans.ns, fans.serverManifest()+"---"+actorManifest(fan, "Person", ""))
		waitServerReady(ctx, pg, func(g Gomega, dep *appsv1.Deployment) {
			g.Expect(*dep.Spec.Replicas).To(BeEquivalentTo(3))
			g.Expect(dep.Status.ReadyReplicas).To(BeEquivalentTo(3))
		})
		waitServerReady(ctx, fans, nil)
		waitActorReady(ctx, pg.ns, project)
		waitActorReady(ctx, fans.ns, fan)
	}, NodeTimeout(6*time.Minute))

	It("serves from every replica, Accepts a Follow once, and shows which replica leads", func(ctx SpecContext) {
		By("every replica answering for the actor on its own pod address")
		pods := serverPods(ctx, pg.ns)
		Expect(pods).To(HaveLen(3))
		for _, p := range pods {
			status, body, err := get(ctx, fmt.Sprintf("http://%s:%d/actors/%s", p.Status.PodIP, 8080, project), pg.host(), "application/activity+json")
			Expect(err).NotTo(HaveOccurred())
			Expect(status).To(Equal(200), "pod %s: %s", p.Name, body)
			Expect(string(body)).To(ContainSubstring(pg.actorID(project)))
		}

		By("a Follow from the other instance, through the Service to whichever replica, Accepted once")
		apply(ctx, fans.ns, followManifest("follow-project", fan, pg.actorID(project)))
		waitPhase(ctx, fans.ns, "follow-project", fedv1.PhaseAccepted)
		Eventually(func(g Gomega) {
			in := inbound(ctx, g, pg.ns, project, fans.actorID(fan))
			g.Expect(in).To(HaveLen(1))
			g.Expect(in[0].Status.Phase).To(Equal(fedv1.PhaseAccepted))
			g.Expect(followersOf(ctx, g, pg.ns, project)).To(BeEquivalentTo(1))
			g.Expect(totalItems(ctx, g, pg, "/actors/"+project+"/followers")).To(BeEquivalentTo(1))
		}).WithContext(ctx).Should(Succeed())
		Consistently(func(g Gomega) {
			g.Expect(inbound(ctx, g, pg.ns, project, fans.actorID(fan))).To(HaveLen(1), "one Follow, one Inbound Subscription")
		}).WithContext(ctx).WithTimeout(5 * time.Second).Should(Succeed())

		By("the exchanges' leader lease held by one of the three pods")
		Eventually(func(g Gomega) {
			leases := &coordinationv1.LeaseList{}
			g.Expect(k8s.List(ctx, leases, client.InNamespace(pg.ns))).To(Succeed())
			names := map[string]bool{}
			for _, p := range serverPods(ctx, pg.ns) {
				names[p.Name] = true
			}
			held := 0
			for _, l := range leases.Items {
				if l.Spec.HolderIdentity == nil {
					continue
				}
				for name := range names {
					if strings.HasPrefix(*l.Spec.HolderIdentity, name) {
						held++
					}
				}
			}
			g.Expect(held).To(BeNumerically(">=", 1), "leases %v, pods %v", leases.Items, names)
		}).WithContext(ctx).Should(Succeed())
	})

	It("rolls out a new image tag under a steady inbox load: every POST answered 202, every accepted activity stored, the rollout reported", func(ctx SpecContext) {
		Expect(imageNext).NotTo(BeEmpty(), "E2E_IMG_NEXT is unset: run the suite with `make test-e2e` (test/e2e/run.sh loads the image under a second tag)")
		target := ""
		Eventually(func(g Gomega) { target = pg.url(ctx, g) }).WithContext(ctx).Should(Succeed())
		targetURL, err := url.Parse(target)
		Expect(err).NotTo(HaveOccurred())
		load := startInboxLoad(ctx, fans, fan, pg, "rollout", func() []string { return []string{targetURL.Host} })
		Eventually(func() int { return load.count(http.StatusAccepted) }).WithContext(ctx).Should(BeNumerically(">=", 20), "the load is flowing before the rollout")

		By("spec.image set to the same image under a new tag, " + imageNext + ", as a platform team upgrades")
		srv := &fedv1.FederationServer{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: pg.ns, Name: serverName}, srv)).To(Succeed())
		base := srv.DeepCopy()
		srv.Spec.Image = imageNext
		Expect(k8s.Patch(ctx, srv, client.MergeFrom(base))).To(Succeed())
		sawRollingOut := false
		Eventually(func(g Gomega) {
			got := &fedv1.FederationServer{}
			g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: pg.ns, Name: serverName}, got)).To(Succeed())
			if c := meta.FindStatusCondition(got.Status.Conditions, fedv1.ConditionReady); c != nil && c.Reason == fedv1.ReasonRollingOut {
				sawRollingOut = true
			}
			dep := &appsv1.Deployment{}
			g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: pg.ns, Name: serverName + "-server"}, dep)).To(Succeed())
			g.Expect(dep.Spec.Template.Spec.Containers[0].Image).To(Equal(imageNext))
			g.Expect(deploymentAvailable(dep)).To(BeTrue())
			g.Expect(dep.Status.UpdatedReplicas).To(BeEquivalentTo(3))
			g.Expect(dep.Status.Replicas).To(BeEquivalentTo(3), "old pods gone")
			g.Expect(meta.IsStatusConditionTrue(got.Status.Conditions, fedv1.ConditionReady)).To(BeTrue())
		}).WithContext(ctx).WithTimeout(4 * time.Minute).WithPolling(200 * time.Millisecond).Should(Succeed())
		Expect(sawRollingOut).To(BeTrue(), "Ready said RollingOut during the rollout")
		for _, p := range serverPods(ctx, pg.ns) {
			Expect(p.Spec.Containers[0].Image).To(Equal(imageNext), "pod %s", p.Name)
		}
		time.Sleep(3 * time.Second) // load on the new pods too
		load.stop()

		By("every POST answered 202 and every one of them in the store")
		answers := load.snapshot()
		Expect(load.tally(http.StatusAccepted)).To(BeEmpty(), "answers other than 202 during the rollout, of %d POSTs", len(answers))
		load.expectAcceptedStored(ctx, dsn)
		GinkgoWriter.Printf("rollout to %s under load: %d POSTs, all 202 and stored\n", imageNext, len(answers))
	})

	It("restarts PostgreSQL under a steady inbox load: readiness false, 503 and never 500 or a hang, then everything resumes without a pod restart", func(ctx SpecContext) {
		pgRestartUnderLoad(ctx, pg, fans, fan, dsn)
	})

	It("fans a release out to 1,000 followers while the leader pod is deleted, and another while a replica is killed with SIGKILL: everyone gets both, duplicates within the documented bound, a new leader within the lease", func(ctx SpecContext) {
		const n = 1000
		cr := startCrowd(n)
		target := ""
		Eventually(func(g Gomega) { target = pg.url(ctx, g) }).WithContext(ctx).Should(Succeed())
		t0 := time.Now()
		cr.followAll(ctx, target, pg.host(), pg.actorID(project))
		Eventually(cr.accepted).WithContext(ctx).WithTimeout(6*time.Minute).WithPolling(time.Second).Should(Equal(n), "every Follow Accepted")
		Eventually(func(g Gomega) {
			g.Expect(followersOf(ctx, g, pg.ns, project)).To(BeNumerically(">=", n))
		}).WithContext(ctx).WithTimeout(2 * time.Minute).Should(Succeed())
		GinkgoWriter.Printf("%d follows accepted in %s\n", n, time.Since(t0).Round(time.Second))

		holder := func(g Gomega) string {
			l := &coordinationv1.Lease{}
			g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: pg.ns, Name: serverName + "-server.federation.fedforge.dev"}, l)).To(Succeed())
			g.Expect(l.Spec.HolderIdentity).NotTo(BeNil())
			pod, _, _ := strings.Cut(*l.Spec.HolderIdentity, "_")
			return pod
		}
		release := func(tag string) string {
			body, link := gitlabRelease(tag)
			Eventually(func(g Gomega) {
				status, resp := postGitLabHook(ctx, g, pg, project, "gitlab", gitlabToken, body)
				g.Expect(status).To(Equal(http.StatusAccepted), "%s", resp)
			}).WithContext(ctx).Should(Succeed())
			return link
		}
		reachesAll := func(link string, within time.Duration) int {
			var dup int
			Eventually(func(g Gomega) {
				reached, d, _ := cr.deliveries(link)
				dup = d
				g.Expect(reached).To(Equal(n), "followers that received the release")
			}).WithContext(ctx).WithTimeout(within).WithPolling(time.Second).Should(Succeed())
			return dup
		}

		By("a release, and the elected replica's pod deleted as the fan-out starts")
		var leader string
		Eventually(func(g Gomega) { leader = holder(g) }).WithContext(ctx).Should(Succeed())
		t1 := time.Now()
		link1 := release("v7.0.1")
		Expect(k8s.Delete(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: pg.ns, Name: leader}})).To(Succeed())
		dup1 := reachesAll(link1, 3*time.Minute)
		took1 := time.Since(t1)
		Eventually(func(g Gomega) { g.Expect(holder(g)).NotTo(Equal(leader)) }).WithContext(ctx).WithTimeout(time.Minute).Should(Succeed(), "a new leader")

		By("another release, and the new leader's process killed with SIGKILL as the fan-out starts")
		Eventually(func(g Gomega) { leader = holder(g) }).WithContext(ctx).Should(Succeed())
		t2 := time.Now()
		link2 := release("v7.0.2")
		pid := killProcessOfPod(leader)
		dup2 := reachesAll(link2, 4*time.Minute) // rows the killed worker held come back after the 90 s lease
		took2 := time.Since(t2)
		Eventually(func(g Gomega) {
			g.Expect(holder(g)).NotTo(BeEmpty())
		}).WithContext(ctx).Should(Succeed())

		GinkgoWriter.Printf("fan-out to %d personal inboxes: pod deleted %s, %d duplicates; process %d killed %s, %d duplicates\n",
			n, took1.Round(time.Second), dup1, pid, took2.Round(time.Second), dup2)
		// docs/delivery.md: a duplicate needs a worker to die between the peer's 2xx and
		// MarkDelivered; at most Concurrency (32) rows per dead worker are in that window.
		Expect(dup1).To(BeNumerically("<=", 32))
		Expect(dup2).To(BeNumerically("<=", 32))
	})

	It("says why a server cannot use its database (wrong password, another server's database) and heals when the Secret is fixed", func(ctx SpecContext) {
		other := instance{ns: "e2e-pg-other"}
		createNamespace(ctx, other.ns)
		u, err := url.Parse(dsn)
		Expect(err).NotTo(HaveOccurred())
		wrong := *u
		wrong.User = url.UserPassword(u.User.Username(), "not-the-password")
		apply(ctx, other.ns, secretManifest("db", "dsn", wrong.String())+"---"+other.pgServerManifest(1))
		ready := func(g Gomega) *metav1.Condition {
			srv := &fedv1.FederationServer{}
			g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: other.ns, Name: serverName}, srv)).To(Succeed())
			c := meta.FindStatusCondition(srv.Status.Conditions, fedv1.ConditionReady)
			g.Expect(c).NotTo(BeNil())
			return c
		}

		By("a wrong password: Ready=False, StoreUnavailable, the driver's message; no crash loop")
		Eventually(func(g Gomega) {
			c := ready(g)
			g.Expect(c.Reason).To(Equal(fedv1.ReasonStoreUnavailable), "Ready: %s %s", c.Reason, c.Message)
			g.Expect(c.Message).To(ContainSubstring("password authentication failed"))
			g.Expect(c.Message).NotTo(ContainSubstring("not-the-password"))
		}).WithContext(ctx).Should(Succeed())
		for _, p := range serverPods(ctx, other.ns) {
			for _, cs := range p.Status.ContainerStatuses {
				Expect(cs.RestartCount).To(BeZero(), "pod %s restarted: the server waits for its store instead of exiting", p.Name)
			}
		}

		By("the right password, but the database of the other server: refused, naming its owner")
		apply(ctx, other.ns, secretManifest("db", "dsn", dsn))
		Eventually(func(g Gomega) {
			c := ready(g)
			g.Expect(c.Reason).To(Equal(fedv1.ReasonStoreHostMismatch), "Ready: %s %s", c.Reason, c.Message)
			g.Expect(c.Message).To(ContainSubstring(pg.host()))
		}).WithContext(ctx).Should(Succeed())

		By("its own schema: the same pod opens it and the server becomes Ready")
		apply(ctx, other.ns, secretManifest("db", "dsn", schemaDSN(ctx, dsn, "other")))
		waitServerReady(ctx, other, nil)
		for _, p := range serverPods(ctx, other.ns) {
			for _, cs := range p.Status.ContainerStatuses {
				Expect(cs.RestartCount).To(BeZero(), "pod %s healed by a restart, not by reading the Secret again", p.Name)
			}
		}
	})

	It("runs the README's PostgreSQL-backed three-replica FederationServer as written", func(ctx SpecContext) {
		readme := instance{ns: "e2e-pg-readme"}
		createNamespace(ctx, readme.ns)
		manifest := readmePostgresBlock()
		apply(ctx, readme.ns, replaceDSN(manifest, schemaDSN(ctx, dsn, "readme")))
		waitServerReady(ctx, readme, func(g Gomega, dep *appsv1.Deployment) {
			g.Expect(*dep.Spec.Replicas).To(BeEquivalentTo(3))
			g.Expect(dep.Status.ReadyReplicas).To(BeEquivalentTo(3))
		})
	})
})

// serverPods lists the running pods of the namespace's server Deployment.
func serverPods(ctx context.Context, ns string) []corev1.Pod {
	GinkgoHelper()
	dep := &appsv1.Deployment{}
	Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: serverName + "-server"}, dep)).To(Succeed())
	pods := &corev1.PodList{}
	Expect(k8s.List(ctx, pods, client.InNamespace(ns), client.MatchingLabels(dep.Spec.Selector.MatchLabels))).To(Succeed())
	var out []corev1.Pod
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
			out = append(out, p)
		}
	}
	return out
}

// readmePostgresBlock is the YAML block of the README's "More than one replica: PostgreSQL"
// (the one after its readme-postgres comment), as a reader copies it.
func readmePostgresBlock() string {
	GinkgoHelper()
	raw, err := os.ReadFile(filepath.Join(root, "README.md"))
	Expect(err).NotTo(HaveOccurred())
	_, rest, ok := strings.Cut(string(raw), "<!-- readme-postgres:")
	Expect(ok).To(BeTrue(), "README.md has no readme-postgres block")
	_, rest, ok = strings.Cut(rest, "```yaml\n")
	Expect(ok).To(BeTrue())
	block, _, ok := strings.Cut(rest, "```")
	Expect(ok).To(BeTrue())
	return block
}

// replaceDSN puts dsn in place of the example DSN of a Secret manifest (its "dsn:" line).
func replaceDSN(manifest, dsn string) string {
	GinkgoHelper()
	var out []string
	replaced := 0
	for _, line := range strings.Split(manifest, "\n") {
		if k, _, ok := strings.Cut(line, "dsn: postgres://"); ok {
			line = k + "dsn: " + dsn
			replaced++
		}
		out = append(out, line)
	}
	Expect(replaced).To(Equal(1), "one dsn line in %s", manifest)
	return strings.Join(out, "\n")
}

// schemaDSN makes a schema in the database at dsn and returns a DSN that uses it: a
// second server on the same database needs its own (a store belongs to one host).
func schemaDSN(ctx context.Context, dsn, schema string) string {
	GinkgoHelper()
	db, err := sql.Open("pgx", dsn)
	Expect(err).NotTo(HaveOccurred())
	defer db.Close()
	_, err = db.ExecContext(ctx, `CREATE SCHEMA IF NOT EXISTS `+schema)
	Expect(err).NotTo(HaveOccurred())
	u, err := url.Parse(dsn)
	Expect(err).NotTo(HaveOccurred())
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
